"""Sample datasets shipped with the engine, addressable by `requirements.data_source`.

The guide's examples name a `data_source` ("support_tickets", "customer_interactions"); these
files make those examples run end to end. Real deployments pass `records` or `texts` instead.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from aia_engine.errors import AgentError

ALIASES = {"market": "market_segments", "market_data": "market_segments"}


@cache
def _load(name: str) -> dict[str, Any]:
    path = resources.files("aia_engine.datasets").joinpath(f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def dataset_names() -> list[str]:
    root = resources.files("aia_engine.datasets")
    return sorted(e.name.removesuffix(".json") for e in root.iterdir() if e.name.endswith(".json"))


def load_dataset(name: str) -> list[dict[str, Any]]:
    """The records of the named sample dataset (a fresh copy)."""
    name = ALIASES.get(name, name)
    if name not in dataset_names():
        raise AgentError(
            f"unknown data_source {name!r}; sample datasets are: {', '.join(dataset_names())}; "
            "or pass the data itself as requirements.records / requirements.texts",
            field="requirements.data_source",
            provided_value=name,
        )
    return json.loads(json.dumps(_load(name)["records"]))  # type: ignore[no-any-return]
