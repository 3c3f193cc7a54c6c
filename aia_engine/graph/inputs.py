"""A stage parameter that reads the result of a Cypher query as input.

    "params": {"graph_query": {"query": "MATCH (c:Customer) RETURN c.name, c.value_score",
                               "parameters": {}}}

When the stage runs, the query is run against the knowledge graph of the task's client and its
agent finds the rows in `ctx.inputs["graph"]`: `{"records": [row, ...], "row_count": n,
"query": "..."}`, one row per result as an object by column name (a returned node is its
`node_id`, `type` and `properties`). Built-in agents that read records (`data_analysis_agent`,
...) take them like any upstream stage's records. Checked at submit (`parse_graph_query`).

THE SEAM: `read_graph_query(sessions, client_id, spec) -> list` is the only function the stage
runner calls. Until the query module (`aia_engine.graph.query.run_query`, with the per-process
cache, limits and `$parameters` binding) is merged, it loads the client's graph from the tables
on each call and runs grand-cypher over it, and refuses `parameters` (grand-cypher cannot bind
them, and a query is never built by pasting values in). At merge, its body becomes a call to
`run_query(sessions, client_id, spec.query, spec.parameters, settings=...)`, keeping rows as
objects by column name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from sqlalchemy import select, text

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import GraphQueryFailed, InvalidGraphQueryParam
from aia_engine.graph.model import labels_for

PARAM = "graph_query"
INPUT = "graph"
"""The key of `ctx.inputs` under which the rows reach the agent."""
MAX_QUERY_CHARS = 10_000
MAX_ROWS = 10_000


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
    if len(query) > MAX_QUERY_CHARS:
        raise _bad(
            f"{field_}.query is {len(query)} characters; at most {MAX_QUERY_CHARS}",
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


# -- the seam: replaced by aia_engine.graph.query.run_query at merge ------------------------


def read_graph_query(sessions: Sessions, client_id: str, spec: GraphQuerySpec) -> list[Any]:
    """Rows of `spec.query` over `client_id`'s graph, each an object by column name."""
    from grandcypher import GrandCypher  # type: ignore[import-untyped]

    if spec.parameters:
        raise GraphQueryFailed(
            "graph_query.parameters need the query engine, which this build does not have yet; "
            "write the values into the query",
            field="params.graph_query.parameters",
        )
    graph = _load(sessions, client_id)
    try:
        columns = GrandCypher(graph, limit=MAX_ROWS).run(spec.query)
    except Exception as exc:  # grand-cypher raises lark and plain Python errors
        raise GraphQueryFailed(
            f"graph_query could not be run: {type(exc).__name__}: {str(exc)[:500]}",
            field="params.graph_query.query",
        ) from None
    names = [str(c) for c in columns]
    count = max((len(v) for v in columns.values()), default=0)
    return [
        {name: _value(values[i]) for name, values in zip(names, columns.values(), strict=True)}
        for i in range(min(count, MAX_ROWS))
    ]


def _load(sessions: Sessions, client_id: str) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    with sessions.begin() as session:
        nodes = session.execute(
            text("SELECT node_id, type, properties FROM kg_nodes WHERE client_id = :c"),
            {"c": client_id},
        ).all()
        rels = session.execute(
            text(
                "SELECT relationship_id, type, source_id, target_id, properties "
                "FROM kg_relationships WHERE client_id = :c"
            ),
            {"c": client_id},
        ).all()
    for node_id, node_type, props in nodes:
        graph.add_node(
            node_id,
            **props,
            node_id=node_id,
            type=node_type,
            __labels__=set(labels_for(node_type)),
        )
    for rel_id, rel_type, source, target, props in rels:
        graph.add_edge(
            source,
            target,
            key=rel_id,
            **props,
            relationship_id=rel_id,
            __labels__={rel_type},
        )
    return graph


def _value(value: Any) -> Any:
    if isinstance(value, dict) and "node_id" in value and "__labels__" in value:
        props = {k: v for k, v in value.items() if k not in ("node_id", "type", "__labels__")}
        return {"node_id": value["node_id"], "type": value.get("type"), "properties": props}
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items() if k != "__labels__"}
    if isinstance(value, set | frozenset | tuple):
        return [_value(v) for v in value]
    if isinstance(value, list):
        return [_value(v) for v in value]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
