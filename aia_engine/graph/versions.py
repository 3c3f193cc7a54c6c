"""A graph's version: one more with every write, taken under the graph row's lock, so writes
to one client's graph are serialized and the rows a write stamps say which version made them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_BUMP = text(
    """
    INSERT INTO kg_graphs AS g (client_id, version, nodes, relationships)
    VALUES (:client, 1, 0, 0)
    ON CONFLICT (client_id) DO UPDATE SET version = g.version + 1, updated_at = now()
    RETURNING version
    """
)
_COUNTS = text(
    """
    UPDATE kg_graphs SET nodes = nodes + :nodes, relationships = relationships + :rels
     WHERE client_id = :client
    """
)
_READ = text(
    "SELECT version, nodes, relationships, tombstones_from, updated_at FROM kg_graphs "
    "WHERE client_id = :client"
)


@dataclass(frozen=True)
class GraphState:
    version: int
    nodes: int
    relationships: int
    tombstones_from: int


def begin_write(session: Session, client_id: str) -> int:
    """The new version of the client's graph, for everything this transaction writes. Holds
    the graph's row lock until commit: call it first, before touching rows."""
    return int(session.execute(_BUMP, {"client": client_id}).scalar_one())


def add_counts(session: Session, client_id: str, *, nodes: int, relationships: int) -> None:
    """Keep the graph's node and relationship counts (for /metrics and /health) in step."""
    if nodes or relationships:
        session.execute(_COUNTS, {"client": client_id, "nodes": nodes, "rels": relationships})


def read_state(session: Session, client_id: str) -> GraphState:
    row = session.execute(_READ, {"client": client_id}).first()
    if row is None:
        return GraphState(0, 0, 0, 0)
    return GraphState(int(row.version), int(row.nodes), int(row.relationships),
                      int(row.tombstones_from))  # fmt: skip
