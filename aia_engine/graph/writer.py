"""One write unit on one client's graph: nodes and relationships upserted and deleted in bulk
(one statement per kind, arrays unnested), inside the caller's transaction, following the
rules every graph writer follows: the version is taken first (and with it the graph's lock),
every row written or deleted is stamped with it, an upsert equal to the stored row changes
nothing, deletions leave tombstones, each change is one event, and every node written waits for
its vector (`aia_engine.search.indexing`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.errors import (
    DuplicateGraphItem,
    EngineError,
    InvalidGraphItem,
    MissingRelationshipEnd,
    RelationshipConflict,
)
from aia_engine.graph import changes, versions
from aia_engine.graph import embedding_marks as indexing
from aia_engine.graph.changes import Change
from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn

Status = Literal["created", "updated", "unchanged", "deleted", "not_found", "error"]
Source = Literal["api", "import", "agent"]
T = TypeVar("T")
Indexed = tuple[int, T]
"""An item with its place in the caller's request (for the per-item answer)."""


@dataclass(frozen=True)
class ItemResult:
    index: int
    status: Status
    id: str | None = None
    """The item's node_id or relationship_id (a derived relationship id too); None when the
    item had none to read."""
    error: dict[str, Any] | None = None
    """When `status` is `error`: type, code, message, details (the guide's error shape)."""


def _error(index: int, exc: EngineError, item_id: str | None = None) -> ItemResult:
    return ItemResult(index, "error", item_id, exc.to_dict())


def item_error(index: int, exc: ItemError) -> ItemResult:
    return _error(index, InvalidGraphItem(str(exc), field=exc.field, issue=exc.issue))


def _unique(
    items: Sequence[Indexed[T]], key: Callable[[T], str], where: str
) -> tuple[list[Indexed[T]], list[ItemResult]]:
    """The first item of each id, and an error for each repeat."""
    first: dict[str, int] = {}
    kept: list[Indexed[T]] = []
    repeats: list[ItemResult] = []
    for index, item in items:
        item_id = key(item)
        if item_id in first:
            repeats.append(
                _error(
                    index,
                    DuplicateGraphItem(
                        f"{where}[{index}] repeats {where}[{first[item_id]}] ({item_id!r}); "
                        "send one item per id",
                        field=f"{where}[{index}]",
                        issue="duplicate in this request",
                        provided_value=item_id,
                        first_index=first[item_id],
                    ),
                    item_id,
                )
            )
        else:
            first[item_id] = index
            kept.append((index, item))
    return kept, repeats


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


_UPSERT_NODES = """
INSERT INTO kg_nodes AS n (client_id, node_id, type, properties, version)
SELECT :client, u.node_id, u.type, CAST(u.properties AS jsonb), :version
  FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:props AS text[]))
       AS u(node_id, type, properties)
ON CONFLICT (client_id, node_id) DO UPDATE
   SET type = excluded.type, properties = {props}, version = excluded.version, updated_at = now()
 WHERE (n.type, n.properties) IS DISTINCT FROM (excluded.type, {props})
RETURNING n.node_id, (n.xmax = 0) AS created
"""
_REPLACE = "excluded.properties"
_MERGE = "n.properties || excluded.properties"
UPSERT_NODES = {
    False: text(_UPSERT_NODES.format(props=_REPLACE)),
    True: text(_UPSERT_NODES.format(props=_MERGE)),
}

_NODE_TYPES = text(
    "SELECT node_id, type FROM kg_nodes WHERE client_id = :client "
    "AND node_id = ANY(CAST(:ids AS text[]))"
)
_EXISTING_RELATIONSHIPS = text(
    "SELECT relationship_id, type, source_id, target_id FROM kg_relationships "
    "WHERE client_id = :client AND relationship_id = ANY(CAST(:ids AS text[]))"
)
_UPSERT_RELATIONSHIPS = """
INSERT INTO kg_relationships AS r
       (client_id, relationship_id, type, source_id, target_id, properties, version)
SELECT :client, u.id, u.type, u.source, u.target, CAST(u.properties AS jsonb), :version
  FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[]), CAST(:sources AS text[]),
              CAST(:targets AS text[]), CAST(:props AS text[]))
       AS u(id, type, source, target, properties)
ON CONFLICT (client_id, relationship_id) DO UPDATE
   SET properties = {props}, version = excluded.version, updated_at = now()
 WHERE (r.type, r.source_id, r.target_id) = (excluded.type, excluded.source_id, excluded.target_id)
   AND r.properties IS DISTINCT FROM {props}
RETURNING r.relationship_id, (r.xmax = 0) AS created, r.properties
"""
UPSERT_RELATIONSHIPS = {
    False: text(_UPSERT_RELATIONSHIPS.format(props=_REPLACE)),
    True: text(_UPSERT_RELATIONSHIPS.format(props="r.properties || excluded.properties")),
}
_RELATIONSHIPS_OF_NODES = text(
    """
    SELECT r.relationship_id, r.type, r.source_id, r.target_id, r.properties, s.type AS source_type
      FROM kg_relationships r
      JOIN kg_nodes s ON s.client_id = r.client_id AND s.node_id = r.source_id
     WHERE r.client_id = :client
       AND (r.source_id = ANY(CAST(:ids AS text[])) OR r.target_id = ANY(CAST(:ids AS text[])))
     ORDER BY r.relationship_id
    """
)
_RELATIONSHIPS_OF_NODES_LIMITED = text(
    str(_RELATIONSHIPS_OF_NODES.text).replace("ORDER BY r.relationship_id", "")
    + " ORDER BY r.relationship_id LIMIT :n"
)
_DEGREES = text(
    """
    SELECT n.node_id, count(r.relationship_id) AS degree
      FROM unnest(CAST(:ids AS text[])) AS n(node_id)
      JOIN kg_relationships r ON r.client_id = :client
                             AND (r.source_id = n.node_id OR r.target_id = n.node_id)
     GROUP BY n.node_id
    """
)
CASCADE_EVENTS_MAX = 1000
"""A node delete that takes more relationships with it than this, in one write, reports them as
a count on each `deleted` event instead of one `relationship_removed` event each."""
_DELETE_NODES = text(
    "DELETE FROM kg_nodes WHERE client_id = :client AND node_id = ANY(CAST(:ids AS text[])) "
    "RETURNING node_id, type"
)
_DELETE_RELATIONSHIPS = text(
    """
    WITH gone AS (
        DELETE FROM kg_relationships WHERE client_id = :client
           AND relationship_id = ANY(CAST(:ids AS text[]))
        RETURNING relationship_id, type, source_id, target_id, properties
    )
    SELECT gone.*, s.type AS source_type FROM gone
      JOIN kg_nodes s ON s.client_id = :client AND s.node_id = gone.source_id
    """
)
_TOMBSTONES = text(
    "INSERT INTO kg_tombstones (client_id, version, kind, item_id) "
    "SELECT :client, :version, :kind, unnest(CAST(:ids AS text[]))"
)


def _relationship(
    rel_id: str, rel_type: str, source: str, target: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """A relationship as events and answers show it."""
    return {
        "relationship_id": rel_id,
        "type": rel_type,
        "source": source,
        "target": target,
        "properties": properties,
    }


def _refusal(
    index: int, rel: RelationshipIn, node_types: dict[str, str], old: Any
) -> EngineError | None:
    """Why a checked relationship cannot be written: an end that is not a node of the graph, or
    an existing relationship of that id with another type or other ends (`old`, its row)."""
    for end in ("source", "target"):
        value = getattr(rel, end)
        if value not in node_types:
            return MissingRelationshipEnd(
                f"relationships[{index}].{end}: no node {value!r} in your graph",
                field=f"relationships[{index}].{end}",
                issue="node not found",
                provided_value=value,
            )
    if old is not None and (old.type, old.source_id, old.target_id) != (
        rel.type,
        rel.source,
        rel.target,
    ):
        return RelationshipConflict(
            f"relationship {rel.relationship_id!r} exists as ({old.source_id})-[:{old.type}]->"
            f"({old.target_id}); its type and ends cannot change: delete it and create it "
            "again, or use another relationship_id",
            field=f"relationships[{index}].relationship_id",
            issue="type or ends changed",
            provided_value=rel.relationship_id,
            existing={"type": old.type, "source": old.source_id, "target": old.target_id},
        )
    return None


class Writer:
    """One write unit on one client's graph, inside the caller's transaction: opening it takes
    the graph's next version (and its lock, held to commit); each method writes one kind of
    item in bulk and answers per item; `finish()` keeps the counts and records the events.

    Items must have been checked (`model.node_from`, `model.relationship_from`). Repeated ids in
    one call are refused per item (the first is written)::

        with sessions.begin() as session:
            writer = Writer(session, client_id, source="agent", task_id=task_id)
            writer.upsert_nodes(list(enumerate(nodes)))
            writer.upsert_relationships(list(enumerate(relationships)))
            version = writer.finish()

    When nothing changed, `finish()` undoes the version bump: the graph's version moves only
    when its contents do.
    """

    def __init__(
        self,
        session: Session,
        client_id: str,
        *,
        source: Source = "api",
        task_id: str | None = None,
    ) -> None:
        self.session, self.client_id, self.source, self.task_id = (
            session,
            client_id,
            source,
            task_id,
        )
        self._savepoint = session.begin_nested()
        self.version = versions.begin_write(session, client_id)
        self.changes: list[Change] = []
        self.nodes = self.relationships = 0
        """Net change of the graph's node and relationship counts."""
        self._finished = False

    def _params(self, **more: Any) -> dict[str, Any]:
        return {"client": self.client_id, "version": self.version, **more}

    def upsert_nodes(
        self, items: Sequence[Indexed[NodeIn]], *, merge: bool = False
    ) -> list[ItemResult]:
        """Create or update nodes: `type` and `properties` replace the stored ones, or with
        `merge` the properties are merged key by key into the stored ones."""
        kept, results = _unique(items, lambda n: n.node_id, "entities")
        if not kept:
            return results
        nodes = [n for _, n in kept]
        rows = self.session.execute(
            UPSERT_NODES[merge],
            self._params(
                ids=[n.node_id for n in nodes],
                types=[n.type for n in nodes],
                props=[_json(n.properties) for n in nodes],
            ),
        ).all()
        written = {row.node_id: bool(row.created) for row in rows}
        for index, node in kept:
            created = written.get(node.node_id)
            if created is None:
                results.append(ItemResult(index, "unchanged", node.node_id))
                continue
            status: Status = "created" if created else "updated"
            results.append(ItemResult(index, status, node.node_id))
            self.changes.append(Change(status, node.node_id, node.type))
            self.nodes += created
        return results

    def upsert_relationships(
        self, items: Sequence[Indexed[RelationshipIn]], *, merge: bool = False
    ) -> list[ItemResult]:
        """Create relationships, or update the properties of existing ones. Each end must be a
        node of this graph (else `MissingRelationshipEnd`); an existing id must keep its type,
        source and target (else `RelationshipConflict`)."""
        kept, results = _unique(items, lambda r: r.relationship_id, "relationships")
        if not kept:
            return results
        ends = {e for _, r in kept for e in (r.source, r.target)}
        node_types: dict[str, str] = {
            row.node_id: row.type
            for row in self.session.execute(_NODE_TYPES, self._params(ids=sorted(ends)))
        }
        existing = {
            row.relationship_id: row
            for row in self.session.execute(
                _EXISTING_RELATIONSHIPS, self._params(ids=[r.relationship_id for _, r in kept])
            )
        }
        ok: list[Indexed[RelationshipIn]] = []
        for index, rel in kept:
            refusal = _refusal(index, rel, node_types, existing.get(rel.relationship_id))
            if refusal is None:
                ok.append((index, rel))
            else:
                results.append(_error(index, refusal, rel.relationship_id))
        if not ok:
            return results
        rels = [r for _, r in ok]
        rows = self.session.execute(
            UPSERT_RELATIONSHIPS[merge],
            self._params(
                ids=[r.relationship_id for r in rels],
                types=[r.type for r in rels],
                sources=[r.source for r in rels],
                targets=[r.target for r in rels],
                props=[_json(r.properties) for r in rels],
            ),
        ).all()
        written = {row.relationship_id: bool(row.created) for row in rows}
        stored = {row.relationship_id: row.properties for row in rows}  # merged, with merge
        for index, rel in ok:
            created = written.get(rel.relationship_id)
            if created is None:
                results.append(ItemResult(index, "unchanged", rel.relationship_id))
                continue
            results.append(
                ItemResult(index, "created" if created else "updated", rel.relationship_id)
            )
            self.changes.append(
                Change(
                    "relationship_added" if created else "updated",
                    rel.source,
                    node_types[rel.source],
                    _relationship(
                        rel.relationship_id,
                        rel.type,
                        rel.source,
                        rel.target,
                        stored[rel.relationship_id],
                    ),
                )
            )
            self.relationships += created
        return results

    def delete_nodes(self, items: Sequence[Indexed[str]]) -> list[ItemResult]:
        """Delete nodes and, with them, every relationship from or to them: one
        `relationship_removed` event for each such relationship, then one `deleted` per node
        (with `relationships_removed`, its count). When the relationships removed in one write
        are more than CASCADE_EVENTS_MAX, only the counts say so: a delete cannot flood
        subscribers (nor this process's memory) with one event per relationship."""
        kept, results = _unique(items, lambda i: i, "node_ids")
        if not kept:
            return results
        ids = [i for _, i in kept]
        removed = self.session.execute(
            _RELATIONSHIPS_OF_NODES_LIMITED, self._params(ids=ids, n=CASCADE_EVENTS_MAX + 1)
        ).all()
        degrees = {
            row.node_id: int(row.degree)
            for row in self.session.execute(_DEGREES, self._params(ids=ids))
        }
        total = len({row.relationship_id for row in removed})
        if total > CASCADE_EVENTS_MAX:
            total = int(
                self.session.execute(
                    text(f"SELECT count(*) FROM ({_RELATIONSHIPS_OF_NODES.text}) r"),
                    self._params(ids=ids),
                ).scalar_one()
            )
            removed = []
        deleted: dict[str, str] = {
            row.node_id: row.type
            for row in self.session.execute(_DELETE_NODES, self._params(ids=ids))
        }
        self.relationships -= total
        for row in removed:
            self.changes.append(
                Change(
                    "relationship_removed",
                    row.source_id,
                    row.source_type,
                    _relationship(
                        row.relationship_id, row.type, row.source_id, row.target_id, row.properties
                    ),
                )
            )
        for index, node_id in kept:
            if node_id in deleted:
                results.append(ItemResult(index, "deleted", node_id))
                self.changes.append(
                    Change(
                        "deleted",
                        node_id,
                        deleted[node_id],
                        details={"relationships_removed": degrees.get(node_id, 0)},
                    )
                )
            else:
                results.append(ItemResult(index, "not_found", node_id))
        if deleted:
            self.session.execute(_TOMBSTONES, self._params(kind="node", ids=sorted(deleted)))
            self.nodes -= len(deleted)
        return results

    def delete_relationships(self, items: Sequence[Indexed[str]]) -> list[ItemResult]:
        kept, results = _unique(items, lambda i: i, "relationship_ids")
        if not kept:
            return results
        rows = self.session.execute(
            _DELETE_RELATIONSHIPS, self._params(ids=[i for _, i in kept])
        ).all()
        gone = {row.relationship_id: row for row in rows}
        for index, rel_id in kept:
            row = gone.get(rel_id)
            if row is None:
                results.append(ItemResult(index, "not_found", rel_id))
                continue
            results.append(ItemResult(index, "deleted", rel_id))
            self.changes.append(
                Change(
                    "relationship_removed",
                    row.source_id,
                    row.source_type,
                    _relationship(rel_id, row.type, row.source_id, row.target_id, row.properties),
                )
            )
        if gone:
            self.session.execute(_TOMBSTONES, self._params(kind="relationship", ids=sorted(gone)))
            self.relationships -= len(gone)
        return results

    def finish(self) -> int:
        """Keep the counts and record the events; the graph's version after this unit (the
        one before it when nothing changed: the bump is undone)."""
        if self._finished:
            raise RuntimeError("this Writer has finished")
        self._finished = True
        if not self.changes:
            self._savepoint.rollback()
            return versions.read_state(self.session, self.client_id).version
        self._savepoint.commit()
        versions.add_counts(
            self.session, self.client_id, nodes=self.nodes, relationships=self.relationships
        )
        changes.record(
            self.session,
            self.client_id,
            self.version,
            self.changes,
            source=self.source,
            task_id=self.task_id,
        )
        if any(c.relationship is None and c.change_type in ("created", "updated")
               for c in self.changes):  # fmt: skip
            # Written nodes wait for their vectors; the embedding task is queued on commit.
            indexing.mark_pending_and_notify(self.session, self.client_id, self.version)
        return self.version

    def abandon(self) -> None:
        """Undo this unit (the version bump and anything written)."""
        self._finished = True
        self._savepoint.rollback()
