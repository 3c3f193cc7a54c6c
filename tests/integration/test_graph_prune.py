"""Pruning knowledge-graph tombstones: old ones go, `tombstones_from` follows, a cache further
behind than what is kept reloads (and is right), one within it still catches up in place."""

from __future__ import annotations

import secrets

from sqlalchemy import text

from aia_engine.graph.cache import GraphCache
from aia_engine.graph.model import NodeIn
from aia_engine.graph.prune import prune_tombstones
from aia_engine.graph.versions import read_state
from aia_engine.graph.writer import Writer
from tests.integration.conftest import Services


def write(services: Services, client: str, *, add: list[str] = (), drop: list[str] = ()) -> int:  # type: ignore[assignment]
    with services.sessions.begin() as session:
        writer = Writer(session, client)
        writer.upsert_nodes([(i, NodeIn(n, "customer", {})) for i, n in enumerate(add)])
        writer.delete_nodes(list(enumerate(drop)))
        return writer.finish()


def tombstones(services: Services, client: str) -> tuple[int, int]:
    with services.sessions.begin() as session:
        state = read_state(session, client)
        count = session.execute(
            text("SELECT count(*) FROM kg_tombstones WHERE client_id = :c"),
            {"c": client},
        ).scalar_one()
    return int(count), state.tombstones_from


def test_old_tombstones_are_pruned_and_a_cache_too_far_behind_reloads(services: Services) -> None:
    client, other = f"prune-{secrets.token_hex(4)}", f"prune-{secrets.token_hex(4)}"
    write(services, client, add=[f"n{i}" for i in range(6)])  # version 1
    write(services, other, add=["x"])
    write(services, other, drop=["x"])  # another graph's tombstone, within what it keeps
    old, recent = GraphCache(10_000), GraphCache(10_000)
    assert old.current(services.sessions, client).loaded
    for i in range(5):  # versions 2..6 each delete one node
        write(services, client, drop=[f"n{i}"])
        if i == 2:
            assert recent.current(services.sessions, client).loaded  # at version 4
    assert tombstones(services, client) == (5, 0)

    # Versions 5 and 6 are the last two: the tombstones of versions 2..4 go.
    # (Other tests' graphs in this database may lose old tombstones too: count this one's.)
    assert prune_tombstones(services.sessions, keep_versions=2) >= 3
    assert tombstones(services, client) == (2, 4)
    assert tombstones(services, other) == (1, 0)  # its 2 versions are all kept

    behind = old.current(services.sessions, client)  # at version 1 < 4: reloads
    assert behind.loaded and set(behind.entry.graph) == {"n5"}
    within = recent.current(services.sessions, client)  # at version 4: catches up in place
    assert within.caught_up and not within.loaded and set(within.entry.graph) == {"n5"}
    prune_tombstones(services.sessions, keep_versions=2)  # again: nothing more of this graph
    assert tombstones(services, client) == (2, 4)
