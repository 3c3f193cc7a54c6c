"""Writing and reading one client's knowledge graph: the use cases behind the graph's HTTP
endpoints, for the `knowledge_graph_agent` and `aia-engine kg import` to reuse.

Each write function takes the client's raw items (JSON values), checks every one with
`aia_engine.graph.model`, writes the valid ones in one transaction and answers a `WriteResult`
with a status per item: `created`, `updated`, `unchanged`, `deleted`, `not_found` or `error`
(with the error in the guide's shape). One bad item never stops the others (partial
acceptance, as batch-submit does). An id repeated in one request is an error on each repeat;
the first occurrence is written.

A write that changes something takes the next graph version: its rows are stamped with it, its
deletions leave tombstones, each change is one event (`changes.record`). A write that changes
nothing (every item unchanged, not found or refused) leaves the version, the rows and the event
log as they were, and answers the current version.

To write several kinds of items in one transaction (an agent's stage: nodes, then
relationships between them), use `aia_engine.graph.writer.Writer` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.errors import NodeNotFound
from aia_engine.graph import embedding_marks as indexing
from aia_engine.graph.idempotency import Idempotency
from aia_engine.graph.model import ItemError, check_id, node_from, relationship_from
from aia_engine.graph.writer import Indexed, ItemResult, Source, Status, Writer, item_error

T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """The answer of one write: the graph's version after it and every item's outcome."""

    id_field: Literal["node_id", "relationship_id"]
    graph_version: int
    items: list[ItemResult]
    replayed: bool = False
    """True when an Idempotency-Key repeat answered the first request's result."""

    @property
    def accepted(self) -> int:
        return sum(1 for item in self.items if item.status != "error")

    @property
    def rejected(self) -> int:
        return len(self.items) - self.accepted

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    def to_dict(self) -> dict[str, Any]:
        """The HTTP answer's body (api/schemas.py GraphWriteResult)."""
        results = []
        for item in self.items:
            row: dict[str, Any] = {"index": item.index}
            if item.id is not None:
                row[self.id_field] = item.id
            row["status"] = item.status
            if item.error is not None:
                row["error"] = item.error
            results.append(row)
        return {
            "graph_version": self.graph_version,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "results": results,
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, id_field: Literal["node_id", "relationship_id"]
    ) -> WriteResult:
        """A stored answer (Idempotency-Key), read back as a replayed result."""
        items = [
            ItemResult(r["index"], r["status"], r.get(id_field), r.get("error"))
            for r in data["results"]
        ]
        return cls(id_field, int(data["graph_version"]), items, replayed=True)


IdField = Literal["node_id", "relationship_id"]


def _write(
    sessions: Sessions,
    client_id: str,
    id_field: IdField,
    checked: list[Indexed[Any] | ItemResult],
    apply: Callable[[Writer, list[Indexed[Any]]], list[ItemResult]],
    *,
    source: Source,
    task_id: str | None,
    idempotency: Idempotency | None,
) -> WriteResult:
    refused = [c for c in checked if isinstance(c, ItemResult)]
    valid = [c for c in checked if not isinstance(c, ItemResult)]
    with sessions.begin() as session:
        writer = Writer(session, client_id, source=source, task_id=task_id)
        if idempotency is not None:
            answer = idempotency.stored(session, client_id)
            if answer is not None:
                writer.abandon()
                return WriteResult.from_dict(answer, id_field=id_field)
        done = apply(writer, valid)
        version = writer.finish()
        items = sorted([*refused, *done], key=lambda r: r.index)
        result = WriteResult(id_field, version, items)
        if idempotency is not None:
            idempotency.remember(session, client_id, result.to_dict())
    return result


def _check(
    items: Sequence[Any], read: Callable[[Any, str], T], where: str
) -> list[Indexed[T] | ItemResult]:
    out: list[Indexed[T] | ItemResult] = []
    for index, raw in enumerate(items):
        try:
            out.append((index, read(raw, f"{where}[{index}]")))
        except ItemError as exc:
            out.append(item_error(index, exc))
    return out


def upsert_nodes(
    sessions: Sessions,
    client_id: str,
    items: Sequence[Any],
    merge: bool = False,
    source: Source = "api",
    task_id: str | None = None,
    *,
    idempotency: Idempotency | None = None,
) -> WriteResult:
    """Create or update nodes (`{"node_id", "type", "properties"}` each). `merge=False`: the
    node's type and properties become the item's; `merge=True`: the item's properties are
    merged into the stored ones key by key (a key set to null is kept as null). `source` and
    `task_id` say who wrote, in the events."""
    return _write(
        sessions,
        client_id,
        "node_id",
        _check(items, node_from, "entities"),
        lambda w, valid: w.upsert_nodes(valid, merge=merge),
        source=source,
        task_id=task_id,
        idempotency=idempotency,
    )


def upsert_relationships(
    sessions: Sessions,
    client_id: str,
    items: Sequence[Any],
    merge: bool = False,
    source: Source = "api",
    task_id: str | None = None,
    *,
    idempotency: Idempotency | None = None,
) -> WriteResult:
    """Create relationships or update their properties (`{"relationship_id"?, "type", "source",
    "target", "properties"}` each; without an id, one is derived from source, type and target,
    so the same triple written twice is one relationship)."""
    return _write(
        sessions,
        client_id,
        "relationship_id",
        _check(items, relationship_from, "relationships"),
        lambda w, valid: w.upsert_relationships(valid, merge=merge),
        source=source,
        task_id=task_id,
        idempotency=idempotency,
    )


def _checked_ids(items: Sequence[Any], where: str) -> list[Indexed[str] | ItemResult]:
    return _check(items, check_id, where)


def delete_nodes(
    sessions: Sessions,
    client_id: str,
    node_ids: Sequence[Any],
    source: Source = "api",
    task_id: str | None = None,
    *,
    idempotency: Idempotency | None = None,
) -> WriteResult:
    """Delete nodes and their relationships; an id not in the graph is `not_found`."""
    return _write(
        sessions,
        client_id,
        "node_id",
        _checked_ids(node_ids, "node_ids"),
        lambda w, valid: w.delete_nodes(valid),
        source=source,
        task_id=task_id,
        idempotency=idempotency,
    )


def delete_relationships(
    sessions: Sessions,
    client_id: str,
    relationship_ids: Sequence[Any],
    source: Source = "api",
    task_id: str | None = None,
    *,
    idempotency: Idempotency | None = None,
) -> WriteResult:
    """Delete relationships by id; an id not in the graph is `not_found`."""
    return _write(
        sessions,
        client_id,
        "relationship_id",
        _checked_ids(relationship_ids, "relationship_ids"),
        lambda w, valid: w.delete_relationships(valid),
        source=source,
        task_id=task_id,
        idempotency=idempotency,
    )


def delete_node(
    sessions: Sessions,
    client_id: str,
    node_id: str,
    source: Source = "api",
    task_id: str | None = None,
) -> dict[str, Any]:
    """Delete one node and its relationships; NodeNotFound when the graph has no such node."""
    with sessions.begin() as session:
        writer = Writer(session, client_id, source=source, task_id=task_id)
        [item] = writer.delete_nodes([(0, node_id)])
        # The count on the `deleted` event: per-relationship events stop past
        # CASCADE_EVENTS_MAX, the count does not.
        removed = sum(
            int((c.details or {}).get("relationships_removed", 0))
            for c in writer.changes
            if c.change_type == "deleted"
        )
        version = writer.finish()
    if item.status != "deleted":
        raise NodeNotFound(node_id)
    return {
        "node_id": node_id,
        "status": "deleted",
        "relationships_removed": removed,
        "graph_version": version,
    }


# -- reads -----------------------------------------------------------------------------------

_GET_NODE = text(
    """
    SELECT n.node_id, n.type, n.properties, n.created_at, n.updated_at,
           (SELECT count(*) FROM kg_relationships r
             WHERE r.client_id = n.client_id AND r.source_id = n.node_id)
         + (SELECT count(*) FROM kg_relationships r
             WHERE r.client_id = n.client_id AND r.target_id = n.node_id) AS degree
      FROM kg_nodes n
     WHERE n.client_id = :client AND n.node_id = :node_id
    """
)
_NODE_TYPE_COUNTS = text(
    "SELECT type, count(*) AS n FROM kg_nodes WHERE client_id = :client GROUP BY type ORDER BY type"
)
_RELATIONSHIP_TYPE_COUNTS = text(
    "SELECT type, count(*) AS n FROM kg_relationships WHERE client_id = :client "
    "GROUP BY type ORDER BY type"
)
_GRAPH = text(
    "SELECT version, nodes, relationships, updated_at FROM kg_graphs WHERE client_id = :client"
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def get_node(sessions: Sessions, client_id: str, node_id: str) -> dict[str, Any]:
    """The node in the guide's shape (`node_id`, `type`, `properties`, `connections` = its
    degree, a self-loop counting twice as in Cypher's view, `last_updated`), `created_at` and
    `embedding_status` (`status`, `model`, `updated_at` of its vector; semantic search);
    NodeNotFound when the caller's graph has no such node."""
    with sessions.begin() as session:
        row = session.execute(_GET_NODE, {"client": client_id, "node_id": node_id}).first()
        embedding = indexing.entity_status(session, client_id, node_id) if row else None
    if row is None:
        raise NodeNotFound(node_id)
    if embedding is not None:
        embedding["updated_at"] = iso(embedding["updated_at"])
    return {
        "node_id": row.node_id,
        "type": row.type,
        "properties": row.properties,
        "connections": int(row.degree),
        "last_updated": iso(row.updated_at),
        "created_at": iso(row.created_at),
        "embedding_status": embedding,
    }


@dataclass(frozen=True)
class GraphSummary:
    version: int
    nodes: int
    relationships: int
    node_types: dict[str, int] = field(default_factory=dict)
    relationship_types: dict[str, int] = field(default_factory=dict)
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "nodes": self.nodes,
            "relationships": self.relationships,
            "node_types": self.node_types,
            "relationship_types": self.relationship_types,
            "updated_at": iso(self.updated_at),
        }


def graph_summary(sessions: Sessions, client_id: str) -> GraphSummary:
    """The caller's graph in figures: version, node and relationship counts, counts by type,
    when it last changed (version 0 and no time for a client that never wrote)."""
    with sessions.begin() as session:
        params = {"client": client_id}
        row = session.execute(_GRAPH, params).first()
        if row is None:
            return GraphSummary(0, 0, 0)
        node_types = {r.type: int(r.n) for r in session.execute(_NODE_TYPE_COUNTS, params)}
        rel_types = {r.type: int(r.n) for r in session.execute(_RELATIONSHIP_TYPE_COUNTS, params)}
    return GraphSummary(
        int(row.version),
        int(row.nodes),
        int(row.relationships),
        node_types,
        rel_types,
        row.updated_at,
    )
