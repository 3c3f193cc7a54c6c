"""API request figures shared by every API process: each process counts in memory and adds its
counts to Redis every `AIA_METRICS_FLUSH_S` seconds (per-second buckets for the rolling window,
plus running totals), so `/metrics` is the same whichever process answers, and counting costs no
Redis call per request.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import redis

from aia_engine.redis.counters import add_request_counts, request_totals, request_window

WINDOW_S = 60


class RequestCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def record(self, status: int, duration_ms: float) -> None:
        second = int(time.time())
        with self._lock:
            counts = self._pending[second]
            counts["requests"] += 1
            counts["duration_ms"] += duration_ms
            counts[f"status_{status // 100}xx"] += 1

    def flush(self, client: redis.Redis) -> None:
        """Add what was counted to Redis (one pipeline); kept for next time if Redis fails."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
        if not pending:
            return
        try:
            add_request_counts(client, pending, keep_s=WINDOW_S * 3)
        except redis.RedisError:
            with self._lock:
                for second, counts in pending.items():
                    for name, value in counts.items():
                        self._pending[second][name] += value


def window(
    client: redis.Redis, *, now: float | None = None, seconds: int = WINDOW_S
) -> dict[str, float]:
    """Sums over the last `seconds` complete seconds, from every API process."""
    end = int(now if now is not None else time.time())
    return request_window(client, end, seconds)


def totals(client: redis.Redis) -> dict[str, float]:
    return request_totals(client)
