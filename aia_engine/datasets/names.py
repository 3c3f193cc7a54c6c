"""Checking, when a task is submitted, that every dataset it names exists for its client."""

from __future__ import annotations

import json
from typing import Any

from aia_engine.datasets.store import name_hint, visible_names
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidRequest
from workflows.spec import WorkflowSpec

DATA_NAMES = ("data_source", "dataset_id")
"""Keys that name a dataset, in requirements and in stage params."""


def named_datasets(requirements: dict[str, Any], spec: WorkflowSpec) -> list[tuple[str, Any]]:
    """(field, value) of every dataset name in `requirements` and the stages' params."""
    named = [(f"requirements.{k}", requirements[k]) for k in DATA_NAMES if k in requirements]
    for stage in spec.stages.values():
        named += [
            (f"workflow.{stage.name}.params.{k}", stage.params[k])
            for k in DATA_NAMES
            if k in stage.params
        ]
    return named


def check_data_names(
    sessions: Sessions,
    named: list[tuple[str, Any]],
    client_id: str | None,
    known: dict[str, bool],
) -> None:
    """`InvalidRequest` naming the field of the first name that is not a string or names no
    dataset `client_id` may use (its own, a shared one or a sample). `known` caches answers
    across calls (one batch); names not in it are looked up in one query."""
    for field, name in named:
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                f"{field} must name a dataset (a non-empty string), not {json.dumps(name)[:100]}",
                field=field,
                issue="not a dataset name",
                provided_value=name if isinstance(name, int | float | bool) else None,
            )
    unknown = [n for _, n in named if n not in known]
    if unknown:
        with sessions.begin() as session:
            found = visible_names(session, unknown, client_id)
        known.update({n: n in found for n in unknown})
    for field, name in named:
        if not known[name]:
            with sessions.begin() as session:
                hint = name_hint(session, client_id)
            raise InvalidRequest(
                f"{field} names no dataset: {name[:200]!r}. Datasets you can name (or their "
                f"ds_ ids): {hint}. Upload one with POST /datasets?name=NAME or `aia-engine "
                "datasets upload FILE --name NAME`; or send the data itself as "
                "requirements.records",
                field=field,
                issue="no such dataset",
                provided_value=name[:200],
            )
