"""The sweeper: finds deliveries that are due and not in the queue, and marks them sent.

Due means a retry whose time has come, a first attempt whose message never reached the broker
(Redis was down when the pump sent it), or one that was sent long ago and never taken (a lost
message). Sending twice is harmless: an attempt starts only by claiming its row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text

from aia_engine.db.session import Sessions

REQUEUE_AFTER = timedelta(minutes=2)

_DUE = text(
    """
    UPDATE webhook_deliveries SET enqueued_at = :now
     WHERE id IN (
        SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= :now
           AND (lease_until IS NULL OR lease_until < :now)
           AND (enqueued_at IS NULL OR enqueued_at < :stale)
         ORDER BY next_attempt_at
         LIMIT :n
         FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


def due_deliveries(sessions: Sessions, *, now: datetime, limit: int = 2000) -> list[str]:
    with sessions.begin() as session:
        rows = session.execute(_DUE, {"now": now, "stale": now - REQUEUE_AFTER, "n": limit})
        return [str(r) for r in rows.scalars()]
