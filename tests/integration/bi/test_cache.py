"""The dashboard cache against a real Redis: single-flight misses (one process and several),
a failed background recompute, the lock's owner, a waiter's fallback and Redis failing between
the read and the store."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from aia_engine.bi.cache import LOCK_S, DashboardCache
from aia_engine.embedded import start_redis
from aia_engine.errors import TransientError
from tests.integration.conftest import Services


@pytest.fixture
def client(services: Services) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(services.redis_url)
    yield conn
    conn.close()


def _who() -> str:
    return f"bi_cache_{secrets.token_hex(4)}"


class Counted:
    """A computation that counts its calls and takes `seconds`."""

    def __init__(self, seconds: float = 0.0, fail: bool = False) -> None:
        self.calls, self.seconds, self.fail = 0, seconds, fail
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("the database went away")
        return {"n": n, "details": {}}


def _ask_at_once(caches: list[DashboardCache], who: str, compute: Counted, n: int) -> list[Any]:
    barrier = threading.Barrier(n)
    answers: list[Any] = []

    def ask(cache: DashboardCache) -> None:
        barrier.wait()
        try:
            answers.append(cache.get(who, "2025-06", compute))
        except TransientError as exc:
            answers.append(exc)

    threads = [threading.Thread(target=ask, args=(caches[i % len(caches)],)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def test_concurrent_misses_in_one_process_compute_once(client: redis.Redis) -> None:
    cache, compute = DashboardCache(client, ttl_s=60, stale_s=600), Counted(seconds=0.5)
    answers = _ask_at_once([cache], _who(), compute, 8)
    assert compute.calls == 1
    assert all(a["n"] == 1 for a in answers)
    states = sorted(a["details"]["cache"]["state"] for a in answers)
    assert states.count("computed") == 1 and len(states) == 8


def test_concurrent_misses_in_several_processes_compute_once(client: redis.Redis) -> None:
    # one DashboardCache per API process: only the Redis lock is shared
    caches = [DashboardCache(client, ttl_s=60, stale_s=600) for _ in range(3)]
    compute = Counted(seconds=0.5)
    answers = _ask_at_once(caches, _who(), compute, 9)
    assert compute.calls == 1
    assert all(a["n"] == 1 for a in answers)


def test_a_failed_background_recompute_keeps_the_stale_entry(client: redis.Redis) -> None:
    cache = DashboardCache(client, ttl_s=0.3, stale_s=100)
    who = _who()
    first = cache.get(who, None, Counted())
    assert first["details"]["cache"]["state"] == "computed"
    time.sleep(0.5)  # stale (and the lock kept for the fresh period has gone)
    failing = Counted(fail=True)
    stale = cache.get(who, None, failing)
    assert stale["details"]["cache"]["state"] == "stale"
    assert stale["details"]["cache"]["refreshing"] is True
    cache.join()
    assert failing.calls == 1
    again = cache.get(who, None, Counted())
    assert again["n"] == first["n"] and again["details"]["cache"]["state"] == "stale"
    assert again["details"]["cache"]["refreshing"] is True  # the failed one freed the lock
    cache.join()


def test_only_the_lock_s_holder_frees_or_extends_it(client: redis.Redis) -> None:
    cache = DashboardCache(client, ttl_s=1, stale_s=100)
    who = _who()

    def overtaken(month: str | None, fail: bool) -> Any:
        def compute() -> dict[str, Any]:
            # our lock expired and another process took it while we computed
            client.set(cache.key(who, month) + ":lock", "someone-else", ex=LOCK_S)
            if fail:
                raise RuntimeError("failed")
            return {"details": {}}

        return compute

    cache.get(who, None, overtaken(None, fail=False))  # stored: would extend the lock to 1 s
    lock = cache.key(who, None) + ":lock"
    assert client.get(lock) == b"someone-else" and client.pttl(lock) > 100_000
    with pytest.raises(RuntimeError):
        cache.get(who, "2025-06", overtaken("2025-06", fail=True))  # failed: would delete it
    assert client.get(cache.key(who, "2025-06") + ":lock") == b"someone-else"
    client.delete(lock, cache.key(who, "2025-06") + ":lock")


def test_a_waiter_serves_the_old_entry_else_503(client: redis.Redis) -> None:
    now = [1000.0]
    cache = DashboardCache(client, ttl_s=10, stale_s=100, wait_s=0.3, clock=lambda: now[0])
    who = _who()
    lock = cache.key(who, None) + ":lock"
    client.set(lock, "another-process", ex=30)  # another process computes it
    never = Counted()
    with pytest.raises(TransientError) as busy:
        cache.get(who, None, never)
    assert busy.value.status == 503 and busy.value.headers["Retry-After"] == "5"
    # an entry too old to be served as stale, yet still there: the waiter falls back to it
    client.set(
        cache.key(who, None), '{"computed_at": 850.0, "body": {"n": 0, "details": {}}}', ex=30
    )
    old = cache.get(who, None, never)
    assert old["n"] == 0 and old["details"]["cache"]["state"] == "stale"
    assert never.calls == 0  # nobody computed behind another process's back
    client.delete(lock, cache.key(who, None))


def test_redis_failing_between_the_read_and_the_store(tmp_path: Path) -> None:
    url, server = start_redis(tmp_path / "redis")
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        cache = DashboardCache(client, ttl_s=60, stale_s=600)

        def compute() -> dict[str, Any]:
            server.kill()  # Redis dies while the dashboard is computed
            server.wait(10)
            return {"n": 1, "details": {}}

        answer = cache.get(_who(), None, compute)
    finally:
        client.close()
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert answer["n"] == 1
    assert answer["details"]["cache"]["state"] == "computed"
