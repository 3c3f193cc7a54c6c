"""Set-based upserts of nodes and relationships, inside a write transaction (after
`versions.begin_write`). One statement per call, whatever the number of items.

Each item's result, in the order given: "created", "updated", "unchanged" (equal to the stored
row: its version and updated_at are left alone, so it makes no event), or the `ItemError` that
kept it out (the same id twice in one call; a relationship whose source or target is not a node
of the graph, or whose stored type or ends differ). The caller turns results into counts
(`versions.add_counts`) and events (`changes.record`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any, Literal

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn

Status = Literal["created", "updated", "unchanged"]
Result = Status | ItemError

_NODES = """
INSERT INTO kg_nodes AS n (client_id, node_id, type, properties, version, created_at, updated_at)
SELECT :client, x.node_id, x.type, x.properties, :version, now(), now()
  FROM jsonb_to_recordset(CAST(:items AS jsonb)) AS x(node_id text, type text, properties jsonb)
 ORDER BY x.node_id
ON CONFLICT (client_id, node_id) DO UPDATE
   SET type = EXCLUDED.type, properties = {new}, version = EXCLUDED.version, updated_at = now()
 WHERE n.type IS DISTINCT FROM EXCLUDED.type OR n.properties IS DISTINCT FROM {new}
RETURNING n.node_id, (n.xmax = 0) AS created
"""
_UPSERT_NODES = text(_NODES.format(new="EXCLUDED.properties"))
_MERGE_NODES = text(_NODES.format(new="n.properties || EXCLUDED.properties"))
_UPSERT_RELATIONSHIPS = text(
    """
INSERT INTO kg_relationships AS r (client_id, relationship_id, type, source_id, target_id,
                                   properties, version, created_at, updated_at)
SELECT :client, x.relationship_id, x.type, x.source, x.target, x.properties, :version, now(), now()
  FROM jsonb_to_recordset(CAST(:items AS jsonb))
       AS x(relationship_id text, type text, source text, target text, properties jsonb)
 ORDER BY x.relationship_id
ON CONFLICT (client_id, relationship_id) DO UPDATE
   SET properties = EXCLUDED.properties, version = EXCLUDED.version, updated_at = now()
 WHERE r.properties IS DISTINCT FROM EXCLUDED.properties
RETURNING r.relationship_id, (r.xmax = 0) AS created
"""
)
_NODE_TYPES = text(
    "SELECT node_id, type FROM kg_nodes WHERE client_id = :client AND node_id = ANY(:ids)"
)
_STORED_RELATIONSHIPS = text(
    "SELECT relationship_id, type, source_id, target_id FROM kg_relationships "
    "WHERE client_id = :client AND relationship_id = ANY(:ids)"
)


def upsert_nodes(
    session: Session, client_id: str, version: int, nodes: list[NodeIn], merge: bool = False
) -> list[Result]:
    """Write `nodes`: `type` is replaced; `properties` replaced, or with `merge` merged key by
    key into the stored ones (a key given replaces that key, others stay)."""
    results: list[Result | None] = [None] * len(nodes)
    first = _first_of_each(n.node_id for n in nodes)
    for i, node in enumerate(nodes):
        if first[node.node_id] != i:
            results[i] = _twice("node_id", node.node_id, first[node.node_id])
    todo = [node for i, node in enumerate(nodes) if results[i] is None]
    written = _returned(
        session,
        _MERGE_NODES if merge else _UPSERT_NODES,
        client_id,
        version,
        [asdict(n) for n in todo],
    )
    return _fill(results, nodes, lambda n: n.node_id, written)


def upsert_relationships(
    session: Session, client_id: str, version: int, rels: list[RelationshipIn]
) -> list[Result]:
    """Write `rels`; `properties` are replaced. A relationship's type and ends are fixed once
    created; both ends must be nodes of the client's graph (written earlier in the same
    transaction counts)."""
    results: list[Result | None] = [None] * len(rels)
    first = _first_of_each(r.relationship_id for r in rels)
    ends = node_types(session, client_id, {e for r in rels for e in (r.source, r.target)})
    stored = {
        row.relationship_id: (row.type, row.source_id, row.target_id)
        for row in session.execute(
            _STORED_RELATIONSHIPS,
            {"client": client_id, "ids": list({r.relationship_id for r in rels})},
        )
    }
    for i, rel in enumerate(rels):
        results[i] = _relationship_error(rel, i, first, ends, stored)
    todo = [rel for i, rel in enumerate(rels) if results[i] is None]
    written = _returned(
        session, _UPSERT_RELATIONSHIPS, client_id, version, [asdict(r) for r in todo]
    )
    return _fill(results, rels, lambda r: r.relationship_id, written)


def node_types(session: Session, client_id: str, node_ids: Iterable[str]) -> dict[str, str]:
    """The type of each of `node_ids` that is a node of the client's graph."""
    ids = list(set(node_ids))
    if not ids:
        return {}
    rows = session.execute(_NODE_TYPES, {"client": client_id, "ids": ids})
    return {row.node_id: row.type for row in rows}


def _relationship_error(
    rel: RelationshipIn,
    index: int,
    first: dict[str, int],
    ends: dict[str, str],
    stored: dict[str, tuple[str, str, str]],
) -> ItemError | None:
    if first[rel.relationship_id] != index:
        return _twice("relationship_id", rel.relationship_id, first[rel.relationship_id])
    for end, node_id in (("source", rel.source), ("target", rel.target)):
        if node_id not in ends:
            return ItemError(
                f"{end} {node_id!r} is not a node of this graph; write the node first",
                field=end,
                issue="no such node",
            )
    was = stored.get(rel.relationship_id)
    if was is not None and was != (rel.type, rel.source, rel.target):
        return ItemError(
            f"relationship {rel.relationship_id!r} exists as {was[1]!r} -[{was[0]}]-> {was[2]!r}; "
            "a relationship's type and ends are fixed: delete it and create it again",
            field="relationship_id",
            issue="type or ends changed",
        )
    return None


def _first_of_each(ids: Iterable[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, item_id in enumerate(ids):
        first.setdefault(item_id, i)
    return first


def _twice(field: str, item_id: str, first: int) -> ItemError:
    return ItemError(
        f"{field} {item_id!r} appears twice in one write (first as item {first}); give each once",
        field=field,
        issue="duplicate id",
    )


def _returned(
    session: Session,
    statement: TextClause,
    client_id: str,
    version: int,
    items: list[dict[str, Any]],
) -> dict[str, bool]:
    """Item id -> created (True) or updated (False), for the rows the statement changed."""
    if not items:
        return {}
    rows = session.execute(
        statement,
        {"client": client_id, "version": version, "items": json.dumps(items)},
    )
    return {str(row[0]): bool(row[1]) for row in rows}


def _fill(
    results: list[Result | None],
    items: Sequence[NodeIn] | Sequence[RelationshipIn],
    key: Callable[[Any], str],
    written: dict[str, bool],
) -> list[Result]:
    out: list[Result] = []
    for item, result in zip(items, results, strict=True):
        if result is None:
            item_id = key(item)
            result = (
                "unchanged"
                if item_id not in written
                else "created"
                if written[item_id]
                else "updated"
            )
        out.append(result)
    return out
