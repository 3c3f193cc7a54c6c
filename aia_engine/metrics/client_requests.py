"""Per-client API request durations, for the dashboard's mean response time.

Each API process sums, per client and minute, the requests it answered and their durations in
memory, and its periodic flush (AIA_METRICS_FLUSH_S) upserts the sums into `api_request_stats`
(one row per client and minute, added to by every process). Chosen over Redis counters that the
beat would persist: PostgreSQL is where the dashboard reads, the rows are compact (one per
client-minute, not per request) and durable at once, and there is no second copy to reconcile.
Only requests of an identified client are counted (the client is known once a token checked),
and event streams are not (a stream lasts as long as its client listens).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from aia_engine.db.session import Sessions

MAX_PENDING = 100_000
_UPSERT = text(
    """
    INSERT INTO api_request_stats (client_id, minute, requests, total_ms)
    VALUES (:c, :m, :n, :ms)
    ON CONFLICT (client_id, minute) DO UPDATE
       SET requests = api_request_stats.requests + EXCLUDED.requests,
           total_ms = api_request_stats.total_ms + EXCLUDED.total_ms
    """
)
_PRUNE = text("DELETE FROM api_request_stats WHERE minute < :before")


class ClientRequestStats:
    def __init__(self, *, max_pending: int = MAX_PENDING) -> None:
        self.max_pending = max_pending
        """Client-minutes held in memory at most (new ones are dropped past it)."""
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, datetime], list[float]] = defaultdict(lambda: [0, 0.0])

    def record(self, client_id: str, duration_ms: float, *, at: datetime | None = None) -> None:
        minute = (at or datetime.now(UTC)).replace(second=0, microsecond=0)
        with self._lock:
            if len(self._pending) >= self.max_pending and (client_id, minute) not in self._pending:
                return  # the database away for long: drop, never grow
            sums = self._pending[(client_id, minute)]
            sums[0] += 1
            sums[1] += duration_ms

    def flush(self, sessions: Sessions) -> None:
        """Upsert the sums (kept for next time if the database fails)."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: [0, 0.0])
        if not pending:
            return
        rows = [
            {"c": c, "m": m, "n": int(n), "ms": ms}
            for (c, m), (n, ms) in sorted(pending.items())  # one lock order across processes
        ]
        try:
            with sessions.begin() as session:
                session.execute(_UPSERT, rows)
        except Exception:
            with self._lock:  # merged back under the same cap: a long outage never grows it
                for key, (n, ms) in pending.items():
                    if len(self._pending) >= self.max_pending and key not in self._pending:
                        continue
                    sums = self._pending[key]
                    sums[0] += n
                    sums[1] += ms
            raise

    def pending(self) -> int:
        """Client-minutes waiting for the next flush."""
        with self._lock:
            return len(self._pending)


def prune(sessions: Sessions, *, keep_days: int, now: datetime) -> int:
    with sessions.begin() as session:
        result = session.execute(_PRUNE, {"before": now - timedelta(days=keep_days)})
    return int(getattr(result, "rowcount", 0) or 0)
