"""The dashboard cache with Redis unreachable (no server listens on its port): computed inline,
never an error, and still once per key for concurrent requests of this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from aia_engine.bi.cache import DashboardCache
from aia_engine.embedded import free_port
from aia_engine.errors import TransientError


@pytest.fixture
def unreachable() -> Iterator[redis.Redis]:
    client = redis.Redis(
        port=free_port(),
        socket_connect_timeout=0.2,
        socket_timeout=0.2,
        retry=Retry(NoBackoff(), 0),  # each failure at once: the test times the overlap
    )
    yield client
    client.close()


def test_redis_down_means_computed_inline(unreachable: redis.Redis) -> None:
    cache = DashboardCache(unreachable, ttl_s=60, stale_s=600)
    calls: list[int] = []

    def compute() -> dict[str, Any]:
        calls.append(1)
        return {"dashboard_id": "x", "details": {"period": {}}}

    first = cache.get("c", None, compute)
    second = cache.get("c", "2025-06", compute)
    assert len(calls) == 2
    for answer in (first, second):
        assert answer["details"]["cache"] == {
            "hit": False, "age_s": 0.0, "state": "uncached", "refreshing": False
        }  # fmt: skip
        assert answer["details"]["period"] == {}


def test_concurrent_misses_compute_once_without_redis(unreachable: redis.Redis) -> None:
    cache = DashboardCache(unreachable, ttl_s=60, stale_s=600, wait_s=10)
    calls: list[int] = []
    started = threading.Event()

    def compute() -> dict[str, Any]:
        calls.append(1)
        started.set()
        time.sleep(1.0)  # the followers arrive meanwhile
        return {"dashboard_id": "x", "details": {}}

    answers: list[dict[str, Any]] = []
    leader = threading.Thread(target=lambda: answers.append(cache.get("c", None, compute)))
    leader.start()
    assert started.wait(10)
    followers = [
        threading.Thread(target=lambda: answers.append(cache.get("c", None, compute)))
        for _ in range(7)
    ]
    for t in followers:
        t.start()
    for t in [leader, *followers]:
        t.join(20)
    assert len(calls) == 1  # one computation for 8 requests
    states = sorted(a["details"]["cache"]["state"] for a in answers)
    assert states == ["shared"] * 7 + ["uncached"]


def test_a_waiter_past_its_wait_gets_503_not_a_computation(unreachable: redis.Redis) -> None:
    cache = DashboardCache(unreachable, ttl_s=60, stale_s=600, wait_s=0.2)
    release, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> dict[str, Any]:
        calls.append(1)
        started.set()
        release.wait(10)
        return {"details": {}}

    leader = threading.Thread(target=cache.get, args=("c", None, slow))
    leader.start()
    assert started.wait(10)
    with pytest.raises(TransientError) as refused:
        cache.get("c", None, slow)
    release.set()
    leader.join(10)
    assert calls == [1]
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "5"


def test_stale_must_be_longer_than_fresh(unreachable: redis.Redis) -> None:
    with pytest.raises(ValueError, match="stale_s"):
        DashboardCache(unreachable, ttl_s=60, stale_s=60)
