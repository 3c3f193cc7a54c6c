"""Dashboards cached per client and month in Redis: fresh, stale-while-recomputing, or computed.

- fresh (younger than `ttl_s`): served from Redis;
- stale (up to `stale_s`): served from Redis, and ONE recompute starts in the background: a
  Redis lock (SET NX with an expiry) elects it, so N concurrent requests, in any number of API
  processes, start one (the lock outlives the store by the fresh period, so a request that
  read the old entry just before cannot start a second). It runs in a thread of this process,
  not a Celery task: it needs only the API's own sessions and Redis, it should not wait behind
  agent stages in a queue (or fail when no worker runs), and the lock already makes it single
  across processes;
- absent or older: computed inline. Concurrent misses single-flight through the same lock: one
  computes, the others wait for its result (up to `wait_s`, then compute themselves).
- Redis unreachable: computed inline, uncached.

`generated_at` stays the time the figures were computed; `details.cache` says how this answer
was served: {hit, age_s, state: fresh|stale|computed|uncached, refreshing}.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)
Compute = Callable[[], dict[str, Any]]
PREFIX = "aia:bi:dashboard:"
LOCK_S = 120
"""The recompute lock's expiry: past it, a crashed recompute no longer blocks another."""


class DashboardCache:
    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: float,
        stale_s: float,
        wait_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.ttl_s, self.stale_s, self.wait_s = client, ttl_s, stale_s, wait_s
        self.clock = clock
        self.recomputes = 0
        """Background recomputes this object started (tests read it)."""
        self._threads: list[threading.Thread] = []

    @staticmethod
    def key(client_id: str, month: str | None) -> str:
        return f"{PREFIX}{client_id}:{month or 'latest'}"

    def get(self, client_id: str, month: str | None, compute: Compute) -> dict[str, Any]:
        key = self.key(client_id, month)
        try:
            cached = self._read(key)
        except redis.RedisError:
            log.warning("dashboard cache unreachable; computing inline", exc_info=True)
            return _served(compute(), hit=False, age=0.0, state="uncached")
        if cached is not None:
            age = self.clock() - cached["computed_at"]
            if age < self.ttl_s:
                return _served(cached["body"], hit=True, age=age, state="fresh")
            if age < self.stale_s:
                refreshing = self._refresh(key, compute)
                return _served(
                    cached["body"], hit=True, age=age, state="stale", refreshing=refreshing
                )
        return self._compute_once(key, compute)

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the background recomputes started so far (tests; shutdown)."""
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    # -- internals ------------------------------------------------------------------------------
    def _read(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(key)
        return None if raw is None else json.loads(raw)

    def _store(self, key: str, body: dict[str, Any]) -> None:
        entry = json.dumps({"computed_at": self.clock(), "body": body}, separators=(",", ":"))
        self.client.set(key, entry, ex=max(1, int(self.stale_s) + 1))

    def _lock(self, key: str) -> bool:
        return bool(self.client.set(key + ":lock", "1", nx=True, ex=LOCK_S))

    def _unlock(self, key: str, *, stored: bool) -> None:
        """After a stored result the lock stays for the fresh period: a request that read the
        old entry just before the store must not start another computation."""
        if stored:
            self.client.pexpire(key + ":lock", max(1, int(self.ttl_s * 1000)))
        else:
            self.client.delete(key + ":lock")

    def _refresh(self, key: str, compute: Compute) -> bool:
        try:
            if not self._lock(key):
                return False
        except redis.RedisError:
            return False
        self.recomputes += 1

        def run() -> None:
            stored = False
            try:
                self._store(key, compute())
                stored = True
            except Exception:
                log.exception("background dashboard recompute failed; the stale one stays")
            finally:
                with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
                    self._unlock(key, stored=stored)

        thread = threading.Thread(target=run, name="aia-bi-recompute", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return True

    def _compute_once(self, key: str, compute: Compute) -> dict[str, Any]:
        try:
            elected = self._lock(key)
        except redis.RedisError:
            return _served(compute(), hit=False, age=0.0, state="uncached")
        if not elected:  # another request is computing it: wait for its result
            deadline = time.monotonic() + self.wait_s
            while time.monotonic() < deadline:
                time.sleep(0.02)
                try:
                    cached = self._read(key)
                except redis.RedisError:
                    break
                if cached is not None and self.clock() - cached["computed_at"] < self.ttl_s:
                    age = self.clock() - cached["computed_at"]
                    return _served(cached["body"], hit=True, age=age, state="fresh")
        stored = False
        try:
            body = compute()
            try:
                self._store(key, body)
                stored = True
            except redis.RedisError:
                log.warning("could not cache the dashboard", exc_info=True)
            return _served(body, hit=False, age=0.0, state="computed")
        finally:
            if elected:
                with contextlib.suppress(redis.RedisError):
                    self._unlock(key, stored=stored)


def _served(
    body: dict[str, Any], *, hit: bool, age: float, state: str, refreshing: bool = False
) -> dict[str, Any]:
    details = {**body.get("details", {}), "cache": {
        "hit": hit, "age_s": round(max(age, 0.0), 3), "state": state, "refreshing": refreshing,
    }}  # fmt: skip
    return {**body, "details": details}
