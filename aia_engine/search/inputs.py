"""A stage parameter that takes the entities nearest to a text as input.

    "params": {"semantic_search": {"query": "high-value customers in technology sector",
                                   "limit": 10, "threshold": 0.3, "entity_types": ["customer"]}}

When the stage runs, the search runs over the knowledge graph of the task's client (as
POST /knowledge-graph/semantic-search does, without explanations) and its agent finds the
entities in `ctx.inputs["similar"]`: `{"records": [{"entity_id", "similarity_score", "type",
**properties}, ...], "row_count": n, "query": "..."}`, best first, so agents that read records
(`data_analysis_agent`, ...) take them like an upstream stage's records. It takes `query`,
`limit` (1-100, 20), `threshold` (0-1, 0), `entity_types` and `filters`, checked at submit
(`parse_semantic_search`, 422 E062).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import EngineError, InvalidSemanticSearch, SemanticSearchFailed
from aia_engine.search.query import STAGE_FIELDS, Found, SearchSpec, parse_search, search
from aia_engine.settings import Settings, get_settings

PARAM = "semantic_search"
INPUT = "similar"
"""The key of `ctx.inputs` under which the entities reach the agent."""
OWN_FIELDS = ("entity_id", "similarity_score", "type")
"""A record's fields of its own; a property of the same name is left out."""


def parse_semantic_search(
    raw: Any, where: str, dependencies: tuple[str, ...] = (), settings: Settings | None = None
) -> SearchSpec:
    """The stage's `semantic_search` param, checked (`where` is e.g. "workflow.s1.params")."""
    field = f"{where}.{PARAM}"
    spec = parse_search(raw, field, settings or get_settings(), fields=STAGE_FIELDS)
    if INPUT in dependencies:
        raise InvalidSemanticSearch(
            f"{where}: a stage with {PARAM} receives its entities as input {INPUT!r}, so it may "
            f"not also depend on a stage named {INPUT!r}; rename that stage",
            field=field,
            issue="input name taken",
        )
    return replace(spec, include_explanations=False)


def similar_input(sessions: Sessions, task_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The `similar` input of a stage whose params hold a `semantic_search` (run now, for the
    task's client)."""
    spec = parse_semantic_search(params[PARAM], "params")
    with sessions.begin() as session:
        client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
    if client_id is None:
        raise SemanticSearchFailed(f"task {task_id!r} has no client", task_id=task_id)
    try:
        found = search(sessions, client_id, spec, get_settings())
    except EngineError as exc:
        raise SemanticSearchFailed(
            f"semantic_search failed: {exc.message}",
            field="params.semantic_search",
            cause=exc.to_dict(),
        ) from None
    records = [record(f) for f in found]
    return {"records": records, "row_count": len(records), "query": spec.query}


def record(found: Found) -> dict[str, Any]:
    """One entity as a record: its id, score and type, then its properties."""
    own: dict[str, Any] = {
        "entity_id": found.node_id,
        "similarity_score": round(found.score, 4),
        "type": found.type,
    }
    return own | {k: v for k, v in found.properties.items() if k not in OWN_FIELDS}
