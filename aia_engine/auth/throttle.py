"""Token-endpoint throttling per client id and per IP, in Redis, checked before any hashing.

Fixed one-minute windows (INCR + EXPIRE in one pipeline), shared by every API process. If Redis
cannot be reached the endpoint fails closed: no token is issued while it cannot count.
"""

from __future__ import annotations

import time

import redis

from aia_engine.auth.oauth import OAuthError
from aia_engine.redis.counters import count_in_windows


def check_token_rate(
    client: redis.Redis,
    *,
    ip: str,
    client_id: str | None,
    per_ip: int,
    per_client: int,
    now: float | None = None,
) -> None:
    window = int((now or time.time()) // 60)
    keys = [(f"aia:token-rate:ip:{ip}:{window}", per_ip)]
    if client_id:
        keys.append((f"aia:token-rate:client:{client_id[:64]}:{window}", per_client))
    try:
        counts = count_in_windows(client, [key for key, _ in keys], 120)
    except redis.RedisError as exc:
        raise OAuthError(
            "temporarily_unavailable",
            "token service cannot check its rate limit; retry later",
            status=503,
        ) from exc
    for (_, limit), count in zip(keys, counts, strict=True):
        if int(count) > limit:
            retry_after = 60 - int(now or time.time()) % 60
            error = OAuthError(
                "rate_limited", f"too many token requests; retry in {retry_after}s", status=429
            )
            error.retry_after = retry_after  # type: ignore[attr-defined]
            raise error
