"""A stage parameter that reads the result of a Cypher query as input.

    "params": {"graph_query": {"query": "MATCH (c:Customer) RETURN c.name, c.value_score",
                               "parameters": {}}}

When the stage runs, the query is run against the knowledge graph of the task's client and its
agent finds the rows in `ctx.inputs["graph"]`: `{"records": [row, ...], "row_count": n,
"query": "..."}`, one row per result as an object by column name (a returned node is its
`node_id`, `type` and `properties`). Built-in agents that read records (`data_analysis_agent`,
...) take them like any upstream stage's records. Checked at submit (`parse_graph_query`).

The query runs through `aia_engine.graph.query.run_query` (the worker's own graph cache, the
same bounds and `$parameters` binding as `POST /knowledge-graph/query`); at submit, the query
is prepared and parsed, so a syntax error or an unsupported construct is refused then (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import EngineError, GraphQueryFailed, InvalidGraphQueryParam
from aia_engine.settings import get_settings

PARAM = "graph_query"
INPUT = "graph"
"""The key of `ctx.inputs` under which the rows reach the agent."""


@dataclass(frozen=True)
class GraphQuerySpec:
    query: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


def parse_graph_query(raw: Any, where: str, dependencies: tuple[str, ...] = ()) -> GraphQuerySpec:
    """The stage's `graph_query` param, checked (`where` is e.g. "workflow.s1.params")."""
    field_ = f"{where}.{PARAM}"
    if not isinstance(raw, Mapping):
        raise _bad(f"{field_} must be an object with a `query`", field_, "not an object")
    unknown = sorted(set(raw) - {"query", "parameters"})
    if unknown:
        raise _bad(
            f"{field_} has an unknown field {unknown[0]!r}; it takes query and parameters",
            f"{field_}.{unknown[0]}",
            "unknown field",
        )
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _bad(
            f"{field_}.query must be a Cypher query (a string)", f"{field_}.query", "missing"
        )
    max_chars = get_settings().kg_query_max_chars
    if len(query) > max_chars:
        raise _bad(
            f"{field_}.query is {len(query)} characters; at most {max_chars} "
            "(AIA_KG_QUERY_MAX_CHARS)",
            f"{field_}.query",
            "too long",
        )
    parameters = raw.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise _bad(
            f"{field_}.parameters must be an object of values bound to $name",
            f"{field_}.parameters",
            "not an object",
        )
    from aia_engine.graph import cypher  # grand-cypher: imported when a stage asks for it

    try:
        cypher.parse(cypher.prepare(query, parameters))
    except EngineError as exc:
        raise _bad(
            f"{field_}.query: {exc.message}", f"{field_}.query", "not a query we run"
        ) from None
    if INPUT in dependencies:
        raise _bad(
            f"{where}: a stage with {PARAM} receives its rows as input {INPUT!r}, so it may not "
            f"also depend on a stage named {INPUT!r}; rename that stage",
            f"{field_}",
            "input name taken",
        )
    return GraphQuerySpec(query, dict(parameters))


def _bad(message: str, field_: str, issue: str) -> InvalidGraphQueryParam:
    return InvalidGraphQueryParam(message, field=field_, issue=issue)


def graph_input(sessions: Sessions, task_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The `graph` input of a stage whose params hold a `graph_query` (run now, for the task's
    client)."""
    spec = parse_graph_query(params[PARAM], "params")
    with sessions.begin() as session:
        client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
    if client_id is None:
        raise GraphQueryFailed(f"task {task_id!r} has no client", task_id=task_id)
    rows = read_graph_query(sessions, client_id, spec)
    return {"records": rows, "row_count": len(rows), "query": spec.query}


def read_graph_query(sessions: Sessions, client_id: str, spec: GraphQuerySpec) -> list[Any]:
    """Rows of `spec.query` over `client_id`'s graph, each an object by column name. A query the
    engine refuses or stops (E030-E034) fails the stage with E047, the cause in its details."""
    from aia_engine.graph.query import run_query  # grand-cypher: imported when a stage asks

    try:
        found = run_query(sessions, client_id, spec.query, spec.parameters, settings=get_settings())
    except EngineError as exc:
        raise GraphQueryFailed(
            f"graph_query failed: {exc.message}", field="params.graph_query", cause=exc.to_dict()
        ) from None
    if len(found.columns) == 1:
        return [{found.columns[0]: value} for value in found.results]
    return list(found.results)
