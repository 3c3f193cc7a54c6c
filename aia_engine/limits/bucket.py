"""The rate-limit decision: one algorithm, run atomically in Redis (a Lua script) and, when
Redis is down, in process memory. `decide` is the reference; the script mirrors it.

A request is admitted when the bucket holds a token and the hour's count is under the cap;
admitting takes a token and counts one. `X-RateLimit-*` describe the hourly window (as the API
guide shows them), so `Remaining` never grows within a window; the IETF fields list both
policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aia_engine.tiers import TierLimits

HOUR = 3600
EPSILON = 1e-9


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limits: TierLimits
    used: int
    """Requests counted in this hour's window (this one included when admitted)."""
    tokens: float
    """Tokens left in the burst bucket."""
    now: float

    @property
    def window_reset(self) -> int:
        return (int(self.now) // HOUR + 1) * HOUR

    @property
    def remaining(self) -> int:
        return max(0, self.limits.per_hour - self.used)

    @property
    def retry_after(self) -> int:
        """Seconds until a request would be admitted (0 when this one was)."""
        if self.allowed:
            return 0
        if self.used >= self.limits.per_hour:
            return max(1, math.ceil(self.window_reset - self.now))
        return max(1, math.ceil((1 - self.tokens) * 60 / self.limits.per_minute - EPSILON))

    def headers(self) -> dict[str, str]:
        reset_in = max(0, self.window_reset - int(self.now))
        full_in = math.ceil((self.limits.burst - self.tokens) / self.limits.refill_per_s)
        burst_window = math.ceil(self.limits.burst / self.limits.refill_per_s)
        out = {
            "X-RateLimit-Limit": str(self.limits.per_hour),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.window_reset),
            "X-RateLimit-Window": str(HOUR),
            # draft-ietf-httpapi-ratelimit-headers: the hourly cap and the burst bucket
            "RateLimit-Policy": (
                f'"hour";q={self.limits.per_hour};w={HOUR}, '
                f'"burst";q={self.limits.burst};w={burst_window}'
            ),
            "RateLimit": (
                f'"hour";r={self.remaining};t={reset_in}, '
                f'"burst";r={math.floor(self.tokens)};t={max(0, full_in)}'
            ),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def decide(
    bucket: Bucket | None, used: int, limits: TierLimits, now: float
) -> tuple[Decision, Bucket, int]:
    """(decision, the bucket after, the hour's count after) for one request at `now`."""
    if bucket is None:
        tokens, updated = float(limits.burst), now
    else:
        tokens, updated = bucket.tokens, bucket.updated
        if now > updated:
            # per_minute / 60 last: 6 s at 10/min is exactly 1 token, not 0.999...
            tokens = min(float(limits.burst), tokens + (now - updated) * limits.per_minute / 60)
            updated = now
    allowed = tokens >= 1 - EPSILON and used < limits.per_hour
    if allowed:
        tokens -= 1
        used += 1
    return Decision(allowed, limits, used, tokens, now), Bucket(tokens, updated), used
