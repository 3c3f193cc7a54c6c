"""The counters the engine keeps in Redis, each one Lua script or one pipeline per use:

- the rate limiter's token bucket and hourly window (`take`), which can also take a submission's
  places under the active-task quota in the same call;
- the active-task quota: one sorted set of task ids per client (`ActiveSet`);
- the token endpoint's fixed windows (`count_in_windows`);
- expiring slots, counting semaphores whose holders may die (`Slots`);
- request counts, per second and in total (`add_request_counts`, `request_window`,
  `request_totals`).

What each count means, and what happens while Redis is unreachable, is decided by the modules
that use them (`limits.limiter`, `limits.quota`, `auth.throttle`, `metrics.requests`); this
module only knows the keys and the commands, so each counter costs the same few calls it always
did.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from aia_engine.redis.multiplexed import MultiplexedRedis, evalsha

HOUR = 3600


@dataclass(frozen=True)
class Script:
    """A Lua script, run by SHA-1 (loaded on first use and after a Redis restart)."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())

    def __call__(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.text, len(keys), *keys, *args)

    async def run(self, client: MultiplexedRedis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await evalsha(client, self.text, self.sha, list(keys), list(args))


# -- the rate limiter's bucket ------------------------------------------------------------------
# KEYS: bucket hash, hour counter[, active-task set]. ARGV: now, burst, per_minute, per_hour[,
# cap, task ids...]. Mirrors `aia_engine.limits.bucket.decide`.
BUCKET = Script("""
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
""")


def bucket_keys(client_id: str, now: float) -> list[str]:
    window = int(now) // HOUR * HOUR
    return [f"aia:rl:b:{client_id}", f"aia:rl:h:{client_id}:{window}"]


@dataclass(frozen=True)
class Taken:
    allowed: bool
    tokens: float
    used: int
    quota: int
    """The active-task places: 1 taken, 0 no room, -1 not asked (or refused by the limit)."""


async def take(
    client: MultiplexedRedis,
    client_id: str,
    now: float,
    *,
    burst: int,
    per_minute: int,
    per_hour: int,
    quota_key: str | None = None,
    cap: int = 0,
    task_ids: Sequence[str] = (),
) -> Taken:
    """One request through the bucket (and a submission's quota places): one Redis call."""
    names = bucket_keys(client_id, now) + ([quota_key] if quota_key else [])
    args: list[str | int] = [repr(now), burst, per_minute, per_hour]
    if quota_key:
        args += [cap, *task_ids]
    allowed, tokens, used, quota = await BUCKET.run(client, names, args)
    return Taken(bool(allowed), float(tokens), int(used), int(quota))


# -- the active-task quota -------------------------------------------------------------------
# KEYS[1] the client's set; ARGV: now, cap, ids...
RESERVE = Script("""
local have = redis.call('ZCARD', KEYS[1])
local new = 0
for i = 3, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then new = new + 1 end
end
if have + new > tonumber(ARGV[2]) then return {0, have} end
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i]) end
return {1, have + new}
""")


def quota_key(client_id: str) -> str:
    return f"aia:quota:active:{client_id}"


class ActiveSet:
    """Each client's active task ids (score: when the place was taken). `client` serves the
    synchronous calls; `fast`, when given, the calls made on the API's event loop."""

    def __init__(self, client: redis.Redis, fast: MultiplexedRedis | None = None) -> None:
        self.client, self.fast = client, fast

    def reserve(
        self, client_id: str, task_ids: Sequence[str], cap: int, now: float
    ) -> tuple[bool, int]:
        """All of `task_ids` or none: (taken, how many the set held or would hold)."""
        ok, have = RESERVE(self.client, [quota_key(client_id)], [repr(now), cap, *task_ids])
        return bool(ok), int(have)

    async def reserve_async(
        self, client_id: str, task_ids: Sequence[str], cap: int, now: float
    ) -> tuple[bool, int]:
        assert self.fast is not None
        ok, have = await RESERVE.run(self.fast, [quota_key(client_id)], [repr(now), cap, *task_ids])
        return bool(ok), int(have)

    def release(self, client_id: str, task_ids: Sequence[str]) -> None:
        self.client.zrem(quota_key(client_id), *task_ids)

    async def release_async(self, client_id: str, task_ids: Sequence[str]) -> None:
        assert self.fast is not None
        await self.fast.execute("ZREM", quota_key(client_id), *task_ids)

    def members(self, client_id: str) -> list[tuple[str, float]]:
        raw: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
            quota_key(client_id), 0, -1, withscores=True
        )
        return [(m.decode(), float(score)) for m, score in raw]

    def count(self, client_id: str) -> int:
        return int(self.client.zcard(quota_key(client_id)))

    def add_missing(self, entries: Sequence[tuple[str, str, float]]) -> int:
        """(client id, task id, since) put back where missing; how many were."""
        pipe = self.client.pipeline(transaction=False)
        for client_id, task_id, since in entries:
            pipe.zadd(quota_key(client_id), {task_id: since}, nx=True)
        return sum(int(added) for added in pipe.execute())


# -- fixed windows (the token endpoint) ----------------------------------------------------------
def count_in_windows(client: redis.Redis, keys: Sequence[str], ttl_s: int) -> list[int]:
    """Count one more in each window key (created with `ttl_s` to live): one pipeline."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.incr(key)
        pipe.expire(key, ttl_s)
    return [int(count) for count in pipe.execute()[::2]]


# -- expiring slots -------------------------------------------------------------------------------
# KEYS[1] the owner's set; ARGV: now, expiry, member, cap.
ACQUIRE = Script("""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000) + 1000)
return 1
""")


class Slots:
    """Counting semaphores whose slots expire: a holder that dies frees its slot in time.

    Caps attempts in flight per webhook endpoint and open event streams per client, across
    every process. One sorted set per owner; a member's score is when its slot lapses.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str, cap: int, hold_s: float, fail_open: bool
    ) -> None:
        self.client, self.prefix, self.cap, self.hold_s = client, prefix, cap, hold_s
        self.fail_open = fail_open

    def acquire(self, owner: str, member: str, *, wait_s: float = 0.0) -> bool:
        """Take (or renew) a slot, waiting up to `wait_s` for one to free up."""
        deadline = time.monotonic() + wait_s
        while True:
            now = time.time()
            try:
                args: list[str | float] = [now, now + self.hold_s, member, self.cap]
                if ACQUIRE(self.client, [self.prefix + owner], args):
                    return True
            except redis.RedisError:
                if self.fail_open:
                    return True
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def release(self, owner: str, member: str) -> None:
        with contextlib.suppress(redis.RedisError):  # else the slot lapses by itself
            self.client.zrem(self.prefix + owner, member)

    def held(self, owner: str) -> int:
        return int(self.client.zcount(self.prefix + owner, time.time(), "+inf"))


# -- request counts ------------------------------------------------------------------------------
REQUEST_TOTALS = "aia:metrics:api:total"


def request_second_key(second: int) -> str:
    return f"aia:metrics:api:s:{second}"


def add_request_counts(
    client: redis.Redis, counts: Mapping[int, Mapping[str, float]], keep_s: int
) -> None:
    """Add one process's counts (per second) to the shared ones: one pipeline."""
    pipe = client.pipeline(transaction=False)
    for second, named in counts.items():
        for name, value in named.items():
            pipe.hincrbyfloat(request_second_key(second), name, value)
            pipe.hincrbyfloat(REQUEST_TOTALS, name, value)
        pipe.expire(request_second_key(second), keep_s)
    pipe.execute()


def request_window(client: redis.Redis, end: int, seconds: int) -> dict[str, float]:
    """Sums over the `seconds` seconds before `end`, from every API process."""
    pipe = client.pipeline(transaction=False)
    for second in range(end - seconds, end):
        pipe.hgetall(request_second_key(second))
    sums: dict[str, float] = {}
    for bucket in pipe.execute():
        for name, value in bucket.items():
            key = name.decode() if isinstance(name, bytes) else name
            sums[key] = sums.get(key, 0.0) + float(value)
    return sums


def request_totals(client: redis.Redis) -> dict[str, float]:
    found = client.hgetall(REQUEST_TOTALS)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in found.items()}
