"""Seed a client's business graph straight into kg_nodes / kg_relationships (the tables the
dashboard reads), for tests and the benchmark."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from aia_engine.db.session import Sessions


def seed(
    sessions: Sessions,
    client_id: str,
    *,
    nodes: Iterable[tuple[str, str, dict[str, Any] | str]],
    purchases: Iterable[tuple[str, str, dict[str, Any] | str]] = (),
    relationships: Iterable[tuple[str, str, str, dict[str, Any]]] = (),
) -> None:
    """nodes: (node_id, type, properties); purchases: (customer, product, properties), each its
    own relationship; relationships: (type, source, target, properties). Properties given as a
    string are raw JSON (numbers Python's json cannot write)."""
    batch = secrets.token_hex(4)  # relationship ids unique across calls
    node_rows = [{"c": client_id, "n": n, "t": t, "p": _json(p)} for n, t, p in nodes]
    rel_rows = [
        {
            "c": client_id,
            "r": f"purchase-{batch}-{i}",
            "t": "PURCHASED",
            "s": s,
            "g": g,
            "p": _json(p),
        }
        for i, (s, g, p) in enumerate(purchases)
    ] + [
        {"c": client_id, "r": f"rel-{batch}-{i}", "t": t, "s": s, "g": g, "p": json.dumps(p)}
        for i, (t, s, g, p) in enumerate(relationships)
    ]
    with sessions.begin() as session:
        if node_rows:
            session.execute(
                text(
                    "INSERT INTO kg_nodes (client_id, node_id, type, properties, version) "
                    "VALUES (:c, :n, :t, CAST(:p AS jsonb), 1)"
                ),
                node_rows,
            )
        if rel_rows:
            session.execute(
                text(
                    "INSERT INTO kg_relationships (client_id, relationship_id, type, source_id, "
                    "target_id, properties, version) VALUES (:c, :r, :t, :s, :g, CAST(:p AS jsonb), 1)"
                ),
                rel_rows,
            )


def _json(properties: dict[str, Any] | str) -> str:
    return properties if isinstance(properties, str) else json.dumps(properties)
