"""Where the decision runs: in Redis (shared by every API process, atomic), or in this process
while Redis is unreachable (each process admits its share: the limits divided by
`AIA_API_PROCESSES`, so the whole stays near the tier). The clock is injectable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from aia_engine.limits.bucket import HOUR, Bucket, Decision, decide
from aia_engine.redis.counters import take
from aia_engine.redis.multiplexed import MultiplexedRedis
from aia_engine.tiers import TierLimits

log = logging.getLogger(__name__)


@dataclass
class LocalLimiter:
    """The in-process fallback (the same algorithm, over this process's share)."""

    share: int
    state: dict[str, tuple[Bucket, int, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, client_id: str, limits: TierLimits, now: float) -> Decision:
        scaled = TierLimits(
            per_hour=max(1, limits.per_hour // self.share),
            per_minute=max(1, limits.per_minute // self.share),
            burst=max(1, limits.burst // self.share),
            max_active_tasks=limits.max_active_tasks,
        )
        window = int(now) // HOUR
        with self.lock:
            held = self.state.get(client_id)
            bucket, used = (held[0], held[1]) if held and held[2] == window else (None, 0)
            if held and held[2] != window:
                bucket = held[0]
            decision, after, used = decide(bucket, used, scaled, now)
            self.state[client_id] = (after, used, window)
        return decision


class RateLimiter:
    """Async (the API's event loop); falls back to `LocalLimiter` when Redis fails, and says so
    through `on_degraded` once per outage. While degraded, Redis is tried again every
    `retry_s` seconds (of the monotonic clock)."""

    def __init__(
        self,
        client: MultiplexedRedis,
        tiers: dict[str, TierLimits],
        *,
        share: int = 1,
        clock: Callable[[], float] = time.time,
        on_degraded: Callable[[bool], None] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self.client, self.tiers, self.clock, self.retry_s = client, tiers, clock, retry_s
        self.local = LocalLimiter(share)
        self.on_degraded = on_degraded
        self.degraded = False
        self.fallback_decisions = 0
        self._retry_at = 0.0

    async def close(self) -> None:
        await self.client.close()

    def limits_for(self, tier: str) -> TierLimits:
        return self.tiers.get(tier) or self.tiers["developer"]

    async def hit(self, client_id: str, tier: str) -> Decision:
        return (await self.hit_and_reserve(client_id, tier))[0]

    async def hit_and_reserve(
        self,
        client_id: str,
        tier: str,
        *,
        quota_key: str | None = None,
        cap: int = 0,
        task_ids: Sequence[str] = (),
    ) -> tuple[Decision, int]:
        """The decision, and for a submission (`quota_key`, `cap`, `task_ids`) whether its
        active-task places were taken in the same call: 1 taken, 0 no room, -1 not tried
        (refused by the rate limit, or Redis unreachable)."""
        limits = self.limits_for(tier)
        now = self.clock()
        if self.degraded and time.monotonic() < self._retry_at:
            self.fallback_decisions += 1
            return self.local.hit(client_id, limits, now), -1
        try:
            taken = await take(
                self.client, client_id, now,
                burst=limits.burst, per_minute=limits.per_minute, per_hour=limits.per_hour,
                quota_key=quota_key, cap=cap, task_ids=task_ids,
            )  # fmt: skip
        except (redis.RedisError, OSError) as exc:
            log.debug("rate limiter: %r", exc)
            self._retry_at = time.monotonic() + self.retry_s
            self._set_degraded(True)
            self.fallback_decisions += 1
            return self.local.hit(client_id, limits, now), -1
        self._set_degraded(False)
        return Decision(taken.allowed, limits, taken.used, taken.tokens, now), taken.quota

    def _set_degraded(self, degraded: bool) -> None:
        if degraded == self.degraded:
            return
        self.degraded = degraded
        if degraded:
            log.error("rate limiter: Redis unreachable; limiting per process until it returns")
        else:
            log.warning("rate limiter: Redis is back; shared limits again")
        if self.on_degraded is not None:
            try:
                self.on_degraded(degraded)
            except Exception:
                log.exception("rate limiter: could not report the change")
