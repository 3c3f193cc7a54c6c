"""Where the decision runs: in Redis (shared by every API process, atomic), or in this process
while Redis is unreachable (each process admits its share: the limits divided by
`AIA_API_PROCESSES`, so the whole stays near the tier). The clock is injectable."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from aia_engine.limits.bucket import HOUR, Bucket, Decision, decide
from aia_engine.limits.resp import MultiplexedRedis, evalsha
from aia_engine.limits.tiers import TierLimits

log = logging.getLogger(__name__)

# KEYS: bucket hash, hour counter. ARGV: now, burst, per_minute, per_hour.
# Mirrors `decide` in bucket.py.
SCRIPT = """
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[3])
local hourly = tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(b[1])
local updated = tonumber(b[2])
if tokens == nil or updated == nil then
  tokens = cap
  updated = now
elseif now > updated then
  tokens = math.min(cap, tokens + (now - updated) * per_minute / 60)
  updated = now
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local allowed = 0
if tokens >= 1 - 1e-9 and used < hourly then
  tokens = tokens - 1
  used = redis.call('INCR', KEYS[2])
  if used == 1 then redis.call('EXPIRE', KEYS[2], 3660) end
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'u', string.format('%.17g', updated))
redis.call('EXPIRE', KEYS[1], math.ceil(cap * 60 / per_minute) + 60)
-- A submission also takes its places in the active-task set (KEYS[3]; ARGV[5] the cap,
-- ARGV[6..] task ids), all or none, in the same call: -1 not asked, 1 taken, 0 full.
local quota = -1
if #KEYS >= 3 and allowed == 1 then
  local have = redis.call('ZCARD', KEYS[3])
  local new = 0
  for i = 6, #ARGV do
    if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then new = new + 1 end
  end
  if have + new > tonumber(ARGV[5]) then
    quota = 0
  else
    for i = 6, #ARGV do redis.call('ZADD', KEYS[3], 'NX', ARGV[1], ARGV[i]) end
    quota = 1
  end
end
return {allowed, string.format('%.17g', tokens), used, quota}
"""


def limiter_redis(url: str) -> MultiplexedRedis:
    """The limiter's client: one multiplexed connection per process; an unreachable Redis fails
    fast (0.25 s to connect, 0.5 s to answer)."""
    return MultiplexedRedis(url)


def keys(client_id: str, now: float) -> list[str]:
    window = int(now) // HOUR * HOUR
    return [f"aia:rl:b:{client_id}", f"aia:rl:h:{client_id}:{window}"]


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
    through `on_degraded` once per outage."""

    def __init__(
        self,
        client: MultiplexedRedis,
        tiers: dict[str, TierLimits],
        *,
        share: int = 1,
        clock: Callable[[], float] = time.time,
        on_degraded: Callable[[bool], None] | None = None,
    ) -> None:
        self.client, self.tiers, self.clock = client, tiers, clock
        self.local = LocalLimiter(share)
        self.on_degraded = on_degraded
        self.degraded = False
        self.fallback_decisions = 0
        self._retry_at = 0.0
        self._sha = hashlib.sha1(SCRIPT.encode()).hexdigest()

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
            bucket, window = keys(client_id, now)
            names = [bucket, window] + ([quota_key] if quota_key else [])
            args: list[str | int | float] = [
                repr(now),
                limits.burst,
                limits.per_minute,
                limits.per_hour,
            ]
            if quota_key:
                args += [cap, *task_ids]
            reply = await evalsha(self.client, SCRIPT, self._sha, names, list(args))
            allowed, tokens, used, quota = reply
        except (redis.RedisError, OSError) as exc:
            log.debug("rate limiter: %r", exc)
            self._retry_at = time.monotonic() + 1.0  # try Redis again in a second
            self._set_degraded(True)
            self.fallback_decisions += 1
            return self.local.hit(client_id, limits, now), -1
        self._set_degraded(False)
        return Decision(bool(allowed), limits, int(used), float(tokens), now), int(quota)

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
