"""Execution quotas: at most `max_active_tasks` active tasks per client, across API processes.

The count is a Redis sorted set of the client's active task ids, changed only by one Lua
script that admits a whole submission (or batch) or none of it, so concurrent submissions
through any number of API processes never pass the cap. Tasks leave the set lazily: when a
submission would not fit, the ids whose tasks have ended in PostgreSQL (or that were reserved
but never committed, after a minute) are removed and the submission tried once more. Beat
re-adds active tasks after Redis lost its data (`resync`). While Redis is unreachable the quota
is not enforced (submissions must keep working; the outbox holds them), and that is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.errors import QuotaExceeded
from aia_engine.redis.counters import ActiveSet
from aia_engine.redis.multiplexed import MultiplexedRedis

log = logging.getLogger(__name__)
GHOST_AFTER_S = 60.0
_ACTIVE = ("accepted", "queued", "in_progress")

Reserve = Callable[[Sequence[str]], None]


class ActiveTasks:
    def __init__(
        self,
        client: redis.Redis,
        sessions: Sessions,
        *,
        clock: Callable[[], float] = time.time,
        fast: MultiplexedRedis | None = None,
    ) -> None:
        """`client` serves the synchronous calls (batches, retries, pruning); `fast`, when
        given, the single submissions on the API's event loop."""
        self.client, self.sessions, self.clock, self.fast = client, sessions, clock, fast
        self.active = ActiveSet(client, fast)
        self.unenforced = 0

    async def reserve_async(self, client_id: str, task_ids: Sequence[str], cap: int) -> None:
        """`reserve` on the event loop, over the multiplexed connection."""
        if self.fast is None:
            await asyncio.to_thread(self.reserve, client_id, task_ids, cap)
            return
        try:
            for attempt in (1, 2):
                ok, have = await self.active.reserve_async(client_id, task_ids, cap, self.clock())
                if ok:
                    return
                if attempt == 1:
                    await asyncio.to_thread(self.prune, client_id)
        except (redis.RedisError, OSError):
            self.unenforced += 1
            log.warning("quota not enforced for %s: Redis is unreachable", client_id)
            return
        raise QuotaExceeded(active=int(have), limit=cap, requested=len(task_ids))

    async def release_async(self, client_id: str, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        if self.fast is None:
            await asyncio.to_thread(self.release, client_id, task_ids)
            return
        try:
            await self.active.release_async(client_id, task_ids)
        except (redis.RedisError, OSError):
            log.warning("could not release %d quota reservations", len(task_ids))

    def reserve(self, client_id: str, task_ids: Sequence[str], cap: int) -> None:
        """Admit all of `task_ids` or raise `QuotaExceeded`."""
        if not task_ids:
            return
        try:
            for attempt in (1, 2):
                ok, have = self.active.reserve(client_id, task_ids, cap, self.clock())
                if ok:
                    return
                if attempt == 1:
                    self.prune(client_id)
        except redis.RedisError:
            self.unenforced += 1
            log.warning("quota not enforced for %s: Redis is unreachable", client_id)
            return
        raise QuotaExceeded(active=int(have), limit=cap, requested=len(task_ids))

    def release(self, client_id: str, task_ids: Sequence[str]) -> None:
        """Give back reservations whose tasks were not created (or were answered from an
        earlier identical request)."""
        if task_ids:
            try:
                self.active.release(client_id, task_ids)
            except redis.RedisError:
                log.warning("could not release %d quota reservations", len(task_ids))

    def reserver(self, client_id: str, cap: int) -> Reserve:
        return lambda ids: self.reserve(client_id, ids, cap)

    def prune(self, client_id: str) -> int:
        """Drop ids of tasks that ended, and reservations never committed after a minute."""
        held = self.active.members(client_id)
        if not held:
            return 0
        ids = [task_id for task_id, _ in held]
        scores = [score for _, score in held]
        with self.sessions.begin() as session:
            rows = session.execute(
                text("SELECT id, status FROM tasks WHERE id = ANY(:ids)"), {"ids": ids}
            ).all()
        status = {r.id: r.status for r in rows}
        old = self.clock() - GHOST_AFTER_S
        gone = [
            i
            for i, score in zip(ids, scores, strict=True)
            if (i in status and status[i] not in _ACTIVE) or (i not in status and score < old)
        ]
        if gone:
            self.active.release(client_id, gone)
        return len(gone)

    def usage(self, client_id: str) -> int | None:
        """Active tasks counted now (None while Redis is unreachable)."""
        try:
            self.prune(client_id)
            return self.active.count(client_id)
        except redis.RedisError:
            return None

    def resync(self) -> int:
        """Put every active task of PostgreSQL back into its client's set (after Redis lost
        data); returns how many were missing."""
        with self.sessions.begin() as session:
            rows = session.execute(
                text(
                    "SELECT client_id, id, extract(epoch FROM created_at) AS at FROM tasks "
                    "WHERE status IN ('accepted', 'queued', 'in_progress')"
                )
            ).all()
        return self.active.add_missing([(row.client_id, row.id, float(row.at)) for row in rows])


@dataclass(frozen=True)
class ClientQuota:
    """One client's cap, handed to the submission functions."""

    tasks: ActiveTasks
    client_id: str
    cap: int

    def reserve(self, task_ids: Sequence[str]) -> None:
        self.tasks.reserve(self.client_id, task_ids, self.cap)

    def release(self, task_ids: Sequence[str]) -> None:
        self.tasks.release(self.client_id, task_ids)

    async def reserve_async(self, task_ids: Sequence[str]) -> None:
        await self.tasks.reserve_async(self.client_id, task_ids, self.cap)

    async def release_async(self, task_ids: Sequence[str]) -> None:
        await self.tasks.release_async(self.client_id, task_ids)
