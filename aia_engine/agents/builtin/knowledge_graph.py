"""`knowledge_graph_agent`: writes nodes and relationships made from its upstream outputs into
the task's client's knowledge graph, as its params' mapping says (`aia_engine.graph.mapping`).

The whole stage is one graph write (one version, one transaction, one event per change with
source "agent" and the task's id). Upserts are idempotent and a write that changes nothing
takes no version and makes no event, so a stage that runs again (a retry, a redelivery after a
crash) writes nothing twice and adds no events (it writes its items again as they are, so an
edit made to those items in between is overwritten, as a second run of any writer would).

Output: `graph_version`, `changed`, counts per kind (`created`, `updated`, `unchanged`,
`failed`), and `errors`: one entry per item that was not written (`mapping`, `index`, `key`
for an object entry, `node_id` / `relationship_id` when known, `field`, `issue`, `message`),
the first 100 of `errors_total`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import register
from aia_engine.errors import GraphWriteRefused, InvalidGraphMapping
from aia_engine.graph import inputs as graph_inputs
from aia_engine.graph.mapping import (
    MAX_ERRORS_SHOWN,
    MAX_ITEMS,
    Built,
    GraphMapping,
    build_items,
    item_error,
    parse_mapping,
)
from aia_engine.graph.model import ItemError
from aia_engine.graph.writing import Result, Written
from aia_engine.search import inputs as search_inputs
from workflows.spec import StageSpec

NAME = "knowledge_graph_agent"


class KnowledgeGraphAgent:
    name = NAME
    description = (
        "Writes entities and relationships made from upstream outputs into the task's "
        "client's knowledge graph; params.entities / params.relationships map them (see "
        "docs/knowledge-graph.md). One graph version per stage; a re-run writes nothing twice."
    )

    def check_params(self, stage: StageSpec) -> None:
        """At submit: the mapping is valid (`InvalidGraphMapping` naming the field)."""
        _mapping(stage.params, stage.name, stage.dependencies)

    def run(self, ctx: AgentContext) -> dict[str, Any]:
        deps = tuple(name for name in ctx.inputs)
        mapping = _mapping(ctx.params, ctx.stage, deps)
        built = build_items(mapping, ctx.inputs, ctx.requirements)
        total = len(built.nodes) + len(built.relationships)
        if total > MAX_ITEMS:
            raise GraphWriteRefused(
                f"stage {ctx.stage!r} would write {total} items; at most {MAX_ITEMS} per stage "
                "(split the work over several stages, or import with `aia-engine kg import`)",
                field="params",
                provided_value=total,
            )
        if ctx.graph_write is None:
            raise GraphWriteRefused(
                f"stage {ctx.stage!r}: no knowledge graph to write to in this context",
                field="params",
            )
        ctx.progress(50.0, {"nodes": len(built.nodes), "relationships": len(built.relationships)})
        written = ctx.graph_write(built.nodes, built.relationships)
        return _output(built, written)


def _mapping(params: Mapping[str, Any], stage: str, deps: tuple[str, ...]) -> GraphMapping:
    known = {"entities", "relationships", graph_inputs.PARAM, search_inputs.PARAM}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidGraphMapping(
            f"workflow.{stage}.params has an unknown field {unknown[0]!r}; a {NAME} stage "
            f"takes entities, relationships, {graph_inputs.PARAM} and {search_inputs.PARAM}",
            field=f"workflow.{stage}.params.{unknown[0]}",
            issue="unknown field",
            provided_value=unknown[0],
        )
    if graph_inputs.PARAM in params and graph_inputs.INPUT not in deps:
        deps = (*deps, graph_inputs.INPUT)  # its rows can be mapped: "from": "graph.records"
    if search_inputs.PARAM in params and search_inputs.INPUT not in deps:
        deps = (*deps, search_inputs.INPUT)  # and its entities: "from": "similar.records"
    return parse_mapping(params, f"workflow.{stage}.params", deps)


def _output(built: Built, written: Written) -> dict[str, Any]:
    errors = list(built.errors)
    nodes = _counts(written.nodes, built.node_origins, errors, "node_id", built, True)
    rels = _counts(
        written.relationships, built.relationship_origins, errors, "relationship_id", built, False
    )
    return {
        "graph_version": written.version,
        "changed": written.changed,
        "nodes": nodes,
        "relationships": rels,
        "errors": errors[:MAX_ERRORS_SHOWN],
        "errors_total": len(errors),
    }


def _counts(
    results: list[Result],
    origins: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    id_field: str,
    built: Built,
    nodes: bool,
) -> dict[str, int]:
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    for i, (result, origin) in enumerate(zip(results, origins, strict=True)):
        if isinstance(result, ItemError):
            item_id = built.nodes[i][0].node_id if nodes else built.relationships[i].relationship_id
            errors.append(item_error({**origin, id_field: item_id}, result))
            counts["failed"] += 1
        else:
            counts[result] += 1
    # Items the mapping could not make count as failed too.
    prefix = "entities[" if nodes else "relationships["
    counts["failed"] += sum(1 for e in built.errors if str(e.get("mapping", "")).startswith(prefix))
    return counts


knowledge_graph_agent = register(KnowledgeGraphAgent())
