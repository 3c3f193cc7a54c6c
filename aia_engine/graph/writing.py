"""One graph write unit in one transaction, following the writers' rules (docs: knowledge graph):
take the next version, upsert nodes then relationships stamped with it, keep the counts, record
one event per change. A write that changes nothing is rolled back whole: no version is taken
and no event written, so writing the same items again (a redelivered stage) has no effect.

`upsert_nodes` / `upsert_relationships` come from `aia_engine.graph.rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import GraphWriteRefused
from aia_engine.graph import changes, rows, versions
from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn
from aia_engine.graph.rows import Result


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
    source: str,
    task_id: str | None = None,
) -> Written:
    """Upsert `nodes` (each with its merge flag) and then `relationships`, in one transaction.
    Results are in the order given (see `rows`)."""
    with sessions() as session:
        version = versions.begin_write(session, client_id)
        node_results = _upsert_nodes(session, client_id, version, nodes)
        rel_results = rows.upsert_relationships(session, client_id, version, relationships)
        node_changes = [
            changes.Change(str(r), n.node_id, n.type)
            for (n, _), r in zip(nodes, node_results, strict=True)
            if r in ("created", "updated")
        ]
        changed_rels = [
            (rel, r)
            for rel, r in zip(relationships, rel_results, strict=True)
            if r in ("created", "updated")
        ]
        if not node_changes and not changed_rels:
            session.rollback()  # nothing changed: no version, no event
            return Written(
                versions.read_state(session, client_id).version, False, node_results, rel_results
            )
        types = rows.node_types(session, client_id, {rel.source for rel, _ in changed_rels})
        rel_changes = [
            changes.Change(
                "relationship_added" if r == "created" else "updated",
                rel.source,
                types[rel.source],
                relationship=_relationship_view(rel),
            )
            for rel, r in changed_rels
        ]
        versions.add_counts(
            session,
            client_id,
            nodes=node_results.count("created"),
            relationships=rel_results.count("created"),
        )
        changes.record(
            session, client_id, version, node_changes + rel_changes, source=source, task_id=task_id
        )
        session.commit()
        return Written(version, True, node_results, rel_results)


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


def _upsert_nodes(
    session: Any, client_id: str, version: int, nodes: list[tuple[NodeIn, bool]]
) -> list[Result]:
    """Replacing and merging nodes in two statements; a node_id given twice is an item error
    even across the two."""
    results: list[Result | None] = [None] * len(nodes)
    seen: dict[str, int] = {}
    groups: dict[bool, list[int]] = {False: [], True: []}
    for i, (node, merge) in enumerate(nodes):
        if node.node_id in seen:
            results[i] = ItemError(
                f"node_id {node.node_id!r} appears twice in one write (first as item "
                f"{seen[node.node_id]}); give each once",
                field="node_id",
                issue="duplicate id",
            )
            continue
        seen[node.node_id] = i
        groups[merge].append(i)
    for merge, indexes in groups.items():
        written = rows.upsert_nodes(
            session, client_id, version, [nodes[i][0] for i in indexes], merge=merge
        )
        for i, result in zip(indexes, written, strict=True):
            results[i] = result
    return [r for r in results if r is not None]


def _relationship_view(rel: RelationshipIn) -> dict[str, Any]:
    return {
        "relationship_id": rel.relationship_id,
        "type": rel.type,
        "source": rel.source,
        "target": rel.target,
        "properties": rel.properties,
    }
