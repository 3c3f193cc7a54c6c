"""Datasets agents read: clients' own and operators' shared ones in PostgreSQL (`store`, one
row per record in `dataset_rows`, streamed in by `uploads` from files parsed by `files`, read
back by workers through `rows`) and the sample datasets shipped with the engine (`samples`).

A submission names one in `requirements.data_source` or `requirements.dataset_id` (or a stage's
params), by name or `ds_` id. Samples are used only when named: `sample:NAME` always means the
shipped sample; a plain NAME means the caller's own dataset, else a shared one, else the sample
of that name (the guide's examples name `support_tickets` and `customer_interactions`). A name
that resolves to nothing is refused when the task is submitted. See docs/datasets.md.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SAMPLE_PREFIX = "sample:"
ALIASES = {"market": "market_segments", "market_data": "market_segments"}


@cache
def _load(name: str) -> dict[str, Any]:
    path = resources.files("aia_engine.datasets").joinpath(f"{name}.json")
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


@cache
def sample_names() -> tuple[str, ...]:
    """The shipped samples' names (without the `sample:` prefix)."""
    root = resources.files("aia_engine.datasets")
    return tuple(
        sorted(e.name.removesuffix(".json") for e in root.iterdir() if e.name.endswith(".json"))
    )


def sample_name(name: str) -> str | None:
    """The sample `name` asks for (`sample:X`, `X` or an alias of it), or None."""
    name = ALIASES.get(name.removeprefix(SAMPLE_PREFIX), name.removeprefix(SAMPLE_PREFIX))
    return name if name in sample_names() else None


def sample_records(name: str) -> list[dict[str, Any]]:
    """A fresh copy of the records of the sample `name` (as given by `sample_name`)."""
    return json.loads(json.dumps(_load(name)["records"]))  # type: ignore[no-any-return]


def sample_description(name: str) -> str:
    return str(_load(name).get("description", ""))


def sample_hint() -> str:
    return ", ".join(SAMPLE_PREFIX + n for n in sample_names())
