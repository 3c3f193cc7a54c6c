"""Revoked refresh-token families, so that their access tokens are refused at once.

PostgreSQL is the truth (`refresh_tokens.revoked_at`, written before the revocation is
answered). The per-request check never queries it:

1. this process's memory of revoked families (no I/O): a hit is refused;
2. otherwise one `MGET` on Redis of the family's key and of a marker saying Redis holds the
   revocation state: the key is written (with a TTL of one access-token lifetime) right after
   the revocation commits and before it is answered, so every API process sees it on its next
   request;
3. a missing marker means Redis lost its data (flushed, replaced, restarted empty): the process
   reloads the revoked families from PostgreSQL once (concurrent requests wait for that one
   load; at most one such load a second), which puts the keys and the marker back, and then
   decides.

Each process also reloads in the background every `AIA_REVOCATION_POLL_S` seconds (and once at
start), which keeps its memory and Redis' keys in step with PostgreSQL. Bounds: at once in
every process while Redis works; while Redis is unreachable (requests are then checked against
memory only), or if Redis evicts a key or is flushed in the middle of a reload, a revocation
takes effect within `AIA_REVOCATION_POLL_S` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta

import redis
from sqlalchemy import func, select

from aia_engine.clock import utcnow
from aia_engine.db.models import RefreshToken
from aia_engine.db.session import Sessions
from aia_engine.redis.multiplexed import MultiplexedRedis

log = logging.getLogger(__name__)

KEY_PREFIX = "aia:revoked-family:"
MARKER = "aia:revoked-families:loaded"
MARGIN_S = 60
ON_DEMAND_RELOAD_GAP_S = 1.0
"""Kept this much longer than a token's lifetime, for clocks of API hosts a little apart."""


class RevokedFamilies:
    """One per API process (`check` is called from its event loop; the rest from threads)."""

    def __init__(
        self,
        sessions: Sessions,
        client: redis.Redis,
        fast: MultiplexedRedis,
        *,
        token_lifetime_s: int,
    ) -> None:
        self.sessions, self.client, self.fast = sessions, client, fast
        self.hold_s = token_lifetime_s + MARGIN_S
        self._known: dict[str, float] = {}  # family -> wall-clock time its tokens are all dead
        self._lock = threading.Lock()
        self._reloading: asyncio.Future[None] | None = None
        self._next_reload = 0.0
        self.reloads = 0

    # -- the hot path -------------------------------------------------------------------------
    async def check(self, family: str) -> bool:
        """True if `family` is revoked. No PostgreSQL query, except the one reload per process
        after Redis lost its data."""
        if self.known(family):
            return True
        try:
            value, marker = await self.fast.execute("MGET", KEY_PREFIX + family, MARKER)
        except (redis.RedisError, OSError) as exc:
            log.debug("revocation check: Redis unreachable (%r); memory only", exc)
            return False
        if value is not None:
            self._remember({family: time.time() + self.hold_s})
            return True
        if marker is None:
            await self._reload_once()
            return self.known(family)
        return False

    def known(self, family: str) -> bool:
        with self._lock:
            until = self._known.get(family)
        return until is not None and until > time.time()

    async def _reload_once(self) -> None:
        if self._reloading is None or self._reloading.done():
            if time.monotonic() < self._next_reload:
                return  # one on-demand reload a second at most, even if Redis stays unwritable
            self._next_reload = time.monotonic() + ON_DEMAND_RELOAD_GAP_S
            self._reloading = asyncio.ensure_future(asyncio.to_thread(self.reload))
        try:
            await asyncio.shield(self._reloading)
        except Exception:
            log.warning("revocation: could not reload revoked families", exc_info=True)

    # -- writers --------------------------------------------------------------------------------
    def announce(self, family: str) -> None:
        """Called once the revocation of `family` is committed, before it is answered."""
        self._remember({family: time.time() + self.hold_s})
        try:
            self.client.set(KEY_PREFIX + family, "1", ex=self.hold_s)
        except redis.RedisError:
            # PostgreSQL has it: every process learns it on its next reload.
            log.warning("revocation of %s not written to Redis", family, exc_info=True)

    def reload(self) -> None:
        """Revoked families still holding live tokens, from PostgreSQL, into memory and Redis."""
        now = utcnow()
        since = now - timedelta(seconds=self.hold_s)
        with self.sessions.begin() as session:
            rows = session.execute(
                select(RefreshToken.family_id, func.max(RefreshToken.revoked_at))
                .where(RefreshToken.revoked_at > since)
                .group_by(RefreshToken.family_id)
            ).all()
        wall = time.time()
        found: dict[str, float] = {}
        for family, revoked_at in rows:
            if revoked_at is None:  # not possible given the WHERE clause; for the type checker
                continue
            left = self.hold_s - (now - _aware(revoked_at)).total_seconds()
            if left > 0:
                found[family] = wall + left
        with self._lock:
            self._known = {f: t for f, t in self._known.items() if t > wall} | found
        self.reloads += 1
        try:
            pipe = self.client.pipeline(transaction=True)
            for family, until in found.items():
                pipe.set(KEY_PREFIX + family, "1", ex=max(1, int(until - wall)))
            pipe.set(MARKER, "1")
            pipe.execute()
        except redis.RedisError:
            log.warning("revocation: Redis not updated; checking from memory", exc_info=True)

    def _remember(self, families: dict[str, float]) -> None:
        with self._lock:
            self._known.update(families)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


class Reloader:
    """The background reload of one process: a daemon thread, every `interval_s`."""

    def __init__(self, revoked: RevokedFamilies, interval_s: float) -> None:
        self.revoked, self.interval_s = revoked, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aia-revocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                self.revoked.reload()
            except Exception:
                log.warning("revocation: reload from PostgreSQL failed; retrying", exc_info=True)
            if self._stop.wait(self.interval_s):
                return
