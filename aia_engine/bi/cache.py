"""Dashboards cached per client and month in Redis: fresh, stale-while-recomputing, or computed.

- fresh (younger than `ttl_s`): served from Redis;
- stale (up to `stale_s`): served from Redis, and ONE recompute starts in the background: a
  Redis lock (SET NX with an expiry and a random token) elects it, so N concurrent requests, in
  any number of API processes, start one (the lock outlives the store by the fresh period, so a
  request that read the old entry just before cannot start a second). The lock is released or
  extended only by its holder (compare-and-delete / compare-and-extend in Lua), so a holder whose
  lock expired cannot free another's. It runs in a thread of this process, not a Celery task: it
  needs only the API's own sessions and Redis, it should not wait behind agent stages in a
  queue (or fail when no worker runs), and the lock already makes it single across processes.
  At most `background` such threads run at once per process; past that the stale entry is
  served and the refresh is left to a later request;
- absent or older: computed once. Concurrent misses single-flight: in this process through a
  per-key in-process flight (the followers wait for the leader's result, no polling), across
  processes through the Redis lock (the others poll Redis for the stored result). A waiter that
  has waited `wait_s` does not compute: it serves the entry at any age if there is one, else
  answers 503 (TransientError) — a burst of misses never turns into a burst of scans;
- Redis unreachable: computed inline, uncached, still single-flight per key in this process.

`generated_at` stays the time the figures were computed; `details.cache` says how this answer
was served: {hit, age_s, state: fresh|stale|computed|shared|uncached, refreshing}.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from aia_engine.errors import TransientError

log = logging.getLogger(__name__)
Compute = Callable[[], dict[str, Any]]
PREFIX = "aia:bi:dashboard:"
LOCK_S = 120
"""The recompute lock's expiry: past it, a crashed recompute no longer blocks another. A
computation's statements are cancelled well before (dashboard.STATEMENT_TIMEOUT_S)."""
POLL_S = 0.05
"""How often a request waiting for another process's computation reads Redis."""
RETRY_AFTER_S = 5
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass
class _Flight:
    """One computation of a key in this process, and what its followers wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    computed_at: float = 0.0


class DashboardCache:
    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: float,
        stale_s: float,
        wait_s: float = 10.0,
        background: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if stale_s <= ttl_s:
            raise ValueError(f"stale_s ({stale_s}) must be longer than ttl_s ({ttl_s})")
        self.client, self.ttl_s, self.stale_s, self.wait_s = client, ttl_s, stale_s, wait_s
        self.clock = clock
        self.recomputes = 0
        """Background recomputes this object started (tests read it)."""
        self._guard = threading.Lock()
        """Guards recomputes, _threads and _flights (requests run in many threads)."""
        self._threads: list[threading.Thread] = []
        self._flights: dict[str, _Flight] = {}
        self._background = threading.BoundedSemaphore(background)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)

    @staticmethod
    def key(client_id: str, month: str | None) -> str:
        return f"{PREFIX}{client_id}:{month or 'latest'}"

    def get(self, client_id: str, month: str | None, compute: Compute) -> dict[str, Any]:
        """The cached dashboard (starting a background recompute when stale), else computed."""
        answer = self.lookup(client_id, month, compute)
        return answer if answer is not None else self.fill(client_id, month, compute)

    def lookup(self, client_id: str, month: str | None, compute: Compute) -> dict[str, Any] | None:
        """A fresh or stale entry (a stale one starts one background recompute); None on a miss
        or when Redis cannot be read. Never computes on the caller's thread."""
        key = self.key(client_id, month)
        try:
            cached = self._read(key)
        except redis.RedisError:
            log.warning("dashboard cache unreachable; computing inline", exc_info=True)
            return None
        if cached is None:
            return None
        age = self.clock() - cached["computed_at"]
        if age < self.ttl_s:
            return _served(cached["body"], hit=True, age=age, state="fresh")
        if age < self.stale_s:
            refreshing = self._refresh(key, compute)
            return _served(cached["body"], hit=True, age=age, state="stale", refreshing=refreshing)
        return None

    def fill(self, client_id: str, month: str | None, compute: Compute) -> dict[str, Any]:
        """A miss: computed once per key however many requests ask at the same time (the others
        get its result); a waiter past `wait_s` gets `fallback`."""
        key = self.key(client_id, month)
        with self._guard:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(self.wait_s) and flight.answer is not None:
                age = self.clock() - flight.computed_at
                return _served(flight.answer, hit=True, age=age, state="shared")
            return self.fallback(client_id, month)
        try:
            flight.answer = self._lead(key, compute, client_id, month)
            flight.computed_at = self.clock() - flight.answer["details"]["cache"]["age_s"]
            return flight.answer
        finally:
            with self._guard:
                self._flights.pop(key, None)
            flight.done.set()

    def fallback(self, client_id: str, month: str | None) -> dict[str, Any]:
        """For a request that could not get a computation in time: the entry at any age (served
        as stale), else TransientError (503, Retry-After)."""
        with contextlib.suppress(redis.RedisError):
            cached = self._read(self.key(client_id, month))
            if cached is not None:
                age = self.clock() - cached["computed_at"]
                return _served(cached["body"], hit=True, age=age, state="stale")
        raise TransientError(
            "the dashboard is being computed for another request; retry in a few seconds",
            reason="dashboard_busy",
            retry_after_s=RETRY_AFTER_S,
        ).with_headers({"Retry-After": str(RETRY_AFTER_S)})

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the background recomputes started so far (tests; shutdown)."""
        with self._guard:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        with self._guard:
            self._threads = [t for t in self._threads if t.is_alive()]

    # -- internals ------------------------------------------------------------------------------
    def _read(self, key: str) -> dict[str, Any] | None:
        raw = self.client.get(key)
        return None if raw is None else json.loads(raw)

    def _store(self, key: str, body: dict[str, Any]) -> None:
        entry = json.dumps({"computed_at": self.clock(), "body": body}, separators=(",", ":"))
        self.client.set(key, entry, ex=max(1, int(self.stale_s) + 1))

    def _lock(self, key: str) -> str | None:
        """A token when this caller now holds the key's lock, else None."""
        token = secrets.token_hex(16)
        return token if self.client.set(key + ":lock", token, nx=True, ex=LOCK_S) else None

    def _unlock(self, key: str, token: str, *, stored: bool) -> None:
        """After a stored result the lock stays for the fresh period: a request that read the
        old entry just before the store must not start another computation. Either way only
        while the lock is still this token's."""
        if stored:
            self._extend(keys=[key + ":lock"], args=[token, max(1, int(self.ttl_s * 1000))])
        else:
            self._release(keys=[key + ":lock"], args=[token])

    def _refresh(self, key: str, compute: Compute) -> bool:
        if not self._background.acquire(blocking=False):
            return False  # enough recomputes running in this process: serve stale meanwhile
        try:
            token = self._lock(key)
        except redis.RedisError:
            token = None
        if token is None:
            self._background.release()
            return False

        def run() -> None:
            stored = False
            try:
                self._store(key, compute())
                stored = True
            except Exception:
                log.exception("background dashboard recompute failed; the stale one stays")
            finally:
                self._background.release()
                with contextlib.suppress(redis.RedisError):  # else the lock expires by itself
                    self._unlock(key, token, stored=stored)

        thread = threading.Thread(target=run, name="aia-bi-recompute", daemon=True)
        with self._guard:
            self.recomputes += 1
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return True

    def _lead(
        self, key: str, compute: Compute, client_id: str, month: str | None
    ) -> dict[str, Any]:
        """This process's one computation of `key`: elected across processes by the Redis lock
        (else it waits for the holder's result), or alone when Redis is down."""
        try:
            cached = self._read(key)  # stored while this request queued for a slot?
            if cached is not None and self.clock() - cached["computed_at"] < self.ttl_s:
                age = self.clock() - cached["computed_at"]
                return _served(cached["body"], hit=True, age=age, state="fresh")
            token = self._lock(key)
        except redis.RedisError:
            return _served(compute(), hit=False, age=0.0, state="uncached")
        if token is None:  # another process computes it: wait for its result
            deadline = time.monotonic() + self.wait_s
            while time.monotonic() < deadline:
                time.sleep(POLL_S)
                try:
                    cached = self._read(key)
                except redis.RedisError:
                    break
                if cached is not None and self.clock() - cached["computed_at"] < self.ttl_s:
                    age = self.clock() - cached["computed_at"]
                    return _served(cached["body"], hit=True, age=age, state="fresh")
            return self.fallback(client_id, month)
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
            with contextlib.suppress(redis.RedisError):
                self._unlock(key, token, stored=stored)


def _served(
    body: dict[str, Any], *, hit: bool, age: float, state: str, refreshing: bool = False
) -> dict[str, Any]:
    details = {**body.get("details", {}), "cache": {
        "hit": hit, "age_s": round(max(age, 0.0), 3), "state": state, "refreshing": refreshing,
    }}  # fmt: skip
    return {**body, "details": details}
