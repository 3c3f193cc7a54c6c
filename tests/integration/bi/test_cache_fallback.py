"""The dashboard cache with Redis unreachable: computed inline, every time, never an error."""

from __future__ import annotations

from typing import Any

import redis

from aia_engine.bi.cache import DashboardCache
from aia_engine.embedded import free_port


def test_redis_down_means_computed_inline() -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    cache = DashboardCache(client, ttl_s=60, stale_s=600)
    calls: list[int] = []

    def compute() -> dict[str, Any]:
        calls.append(1)
        return {"dashboard_id": "x", "details": {"period": {}}}

    first = cache.get("c", None, compute)
    second = cache.get("c", "2025-06", compute)
    client.close()
    assert len(calls) == 2
    for answer in (first, second):
        assert answer["details"]["cache"] == {
            "hit": False, "age_s": 0.0, "state": "uncached", "refreshing": False
        }  # fmt: skip
        assert answer["details"]["period"] == {}
