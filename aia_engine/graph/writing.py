"""One graph write unit of an agent's stage in one transaction, through the same `Writer` as
the API (docs: knowledge graph): the next version, nodes then relationships stamped with it,
the counts, one event per change. A write that changes nothing takes no version and writes no
event, so writing the same items again (a redelivered stage) has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import GraphWriteRefused
from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn
from aia_engine.graph.writer import ItemResult, Writer

Result = Literal["created", "updated", "unchanged"] | ItemError
"""An item's outcome: its status, or the error that kept it out."""


@dataclass(frozen=True)
class Written:
    version: int
    """The version this write made; the graph's current version when it changed nothing."""
    changed: bool
    nodes: list[Result]
    relationships: list[Result]


def write_items(
    sessions: Sessions,
    client_id: str,
    nodes: list[tuple[NodeIn, bool]],
    relationships: list[RelationshipIn],
    *,
    source: Literal["api", "import", "agent"],
    task_id: str | None = None,
) -> Written:
    """Upsert `nodes` (each with its merge flag) and then `relationships`, in one transaction.
    Results are in the order given; a node id given twice is an error on its repeats, even
    across the two merge modes."""
    node_results: list[Result | None] = [None] * len(nodes)
    groups: dict[bool, list[tuple[int, NodeIn]]] = {False: [], True: []}
    seen: dict[str, int] = {}
    for i, (node, merge) in enumerate(nodes):
        if node.node_id in seen:
            node_results[i] = ItemError(
                f"node_id {node.node_id!r} appears twice in one write (first as item "
                f"{seen[node.node_id]}); give each once",
                field="node_id",
                issue="duplicate id",
            )
            continue
        seen[node.node_id] = i
        groups[merge].append((i, node))
    with sessions.begin() as session:
        writer = Writer(session, client_id, source=source, task_id=task_id)
        for merge, items in groups.items():
            for found in writer.upsert_nodes(items, merge=merge):
                node_results[found.index] = _result(found)
        rel_results = sorted(
            writer.upsert_relationships(list(enumerate(relationships))), key=lambda r: r.index
        )
        before = writer.version
        changed = bool(writer.changes)
        version = writer.finish()
    assert changed == (version == before)
    return Written(
        version,
        changed,
        [r for r in node_results if r is not None],
        [_result(r) for r in rel_results],
    )


def write_for_task(
    sessions: Sessions,
    nodes: list[tuple[NodeIn, bool]],
    relationships: list[RelationshipIn],
    *,
    task_id: str,
) -> Written:
    """`write_items` into the graph of the client owning `task_id`, as its agent stage."""
    with sessions.begin() as session:
        client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
    if client_id is None:
        raise GraphWriteRefused(f"task {task_id!r} has no client", task_id=task_id)
    return write_items(sessions, client_id, nodes, relationships, source="agent", task_id=task_id)


def _result(found: ItemResult) -> Result:
    if found.status in ("created", "updated", "unchanged"):
        return found.status
    details: dict[str, Any] = (found.error or {}).get("details") or {}
    return ItemError(
        str((found.error or {}).get("message", "refused")),
        # "relationships[3].target" in an API answer: the item's own field here (the agent's
        # output names the mapping and the index itself).
        field=str(details.get("field", "")).split("].", 1)[-1],
        issue=str(details.get("issue", (found.error or {}).get("code", "refused"))),
    )
