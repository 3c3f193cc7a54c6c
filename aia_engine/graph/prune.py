"""Forgetting old tombstones. A cache catches up from the tombstones newer than its version;
one older than the graph's `tombstones_from` reloads instead. Keeping the last
AIA_KG_TOMBSTONE_KEEP_VERSIONS versions' tombstones bounds the table while any cache that is
less than that many writes behind still catches up in place."""

from __future__ import annotations

from sqlalchemy import text

from aia_engine.db.session import Sessions

_PRUNE = text(
    """
    WITH g AS (
        SELECT client_id, version - :keep AS upto FROM kg_graphs
         WHERE version - :keep > tombstones_from
    ), gone AS (
        DELETE FROM kg_tombstones t USING g
         WHERE t.client_id = g.client_id AND t.version <= g.upto
        RETURNING 1
    ), moved AS (
        UPDATE kg_graphs k SET tombstones_from = g.upto FROM g WHERE k.client_id = g.client_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) AS pruned
    """
)


def prune_tombstones(sessions: Sessions, *, keep_versions: int) -> int:
    """Delete every graph's tombstones older than its last `keep_versions` versions and move
    its `tombstones_from` up to match; the number of tombstones deleted."""
    with sessions.begin() as session:
        return int(session.execute(_PRUNE, {"keep": keep_versions}).scalar_one())
