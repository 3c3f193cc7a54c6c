"""Counting semaphores in Redis whose slots expire: a holder that dies frees its slot in time.

Used to cap attempts in flight per webhook endpoint and open event streams per client, across
every process. One sorted set per owner; a member's score is when its slot lapses.
"""

from __future__ import annotations

import contextlib
import time

import redis

# KEYS[1] the owner's set; ARGV: now, expiry, member, cap.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000) + 1000)
return 1
"""


class Slots:
    def __init__(
        self, client: redis.Redis, *, prefix: str, cap: int, hold_s: float, fail_open: bool
    ) -> None:
        self.client, self.prefix, self.cap, self.hold_s = client, prefix, cap, hold_s
        self.fail_open = fail_open
        self._acquire = client.register_script(_ACQUIRE)

    def acquire(self, owner: str, member: str, *, wait_s: float = 0.0) -> bool:
        """Take (or renew) a slot, waiting up to `wait_s` for one to free up."""
        deadline = time.monotonic() + wait_s
        while True:
            now = time.time()
            try:
                args: list[str | float] = [now, now + self.hold_s, member, self.cap]
                if self._acquire(keys=[self.prefix + owner], args=args):
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
