"""Bearer-token authentication and scope checks for API routes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from aia_engine.auth.clients import MISSING, active_client, cached_active_client
from aia_engine.auth.tokens import decode_access_token
from aia_engine.errors import PermissionDenied, RateLimitExceeded, Unauthenticated
from aia_engine.redis.counters import quota_key
from api.deps import in_thread, quota_for, resources


@dataclass(frozen=True)
class Principal:
    client_id: str
    scopes: list[str]
    tier: str


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated(
            "missing Authorization header; send 'Authorization: Bearer <token>'", reason="missing"
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'", reason="scheme")
    res = resources(request)
    token = token.strip()
    claims = res.tokens.get(token, time.time())
    if claims is None:
        claims = decode_access_token(token, settings=res.settings)
        res.tokens.put(token, claims)
    if (
        claims.family is not None
        and res.revoked is not None
        and await res.revoked.check(claims.family)
    ):
        raise Unauthenticated(
            "access token was revoked (its refresh token family was revoked); request a new one",
            reason="revoked",
        )
    lifetime_s = res.settings.client_cache_s
    client = cached_active_client(claims.client_id, lifetime_s)
    if client is MISSING:
        client = await in_thread(active_client, res.sessions, claims.client_id, lifetime_s)
    if client is None:
        raise Unauthenticated("the token's client is unknown or disabled", reason="client")
    return Principal(claims.client_id, claims.scopes, client.tier)


async def require(request: Request, scope: str, *, reserve: Sequence[str] = ()) -> Principal:
    """The caller, who must hold `scope` (read for GETs, write for changes, admin for operators),
    within its tier's rate limit. `reserve`: ids of tasks about to be submitted, whose places
    under the active-task quota are taken in the same Redis call (`QuotaExceeded` if no room);
    the caller gives them back if no task comes of it."""
    principal = await authenticate(request)
    request.state.client_id = principal.client_id
    res = resources(request)
    quota = quota_for(res, principal) if reserve else None
    placed = -1
    if res.limiter is not None:
        if quota is not None:
            decision, placed = await res.limiter.hit_and_reserve(
                principal.client_id,
                principal.tier,
                quota_key=quota_key(principal.client_id),
                cap=quota.cap,
                task_ids=reserve,
            )
        else:
            decision = await res.limiter.hit(principal.client_id, principal.tier)
        headers = request.state.rate_limit_headers = decision.headers()
        request.state.rate_limit_decision = decision
        if not decision.allowed:
            raise RateLimitExceeded(
                f"rate limit exceeded for the {principal.tier} tier; retry after "
                f"{decision.retry_after}s",
                tier=principal.tier,
                limit_per_hour=decision.limits.per_hour,
                limit_per_minute=decision.limits.per_minute,
                burst=decision.limits.burst,
                retry_after_s=decision.retry_after,
            ).with_headers(headers)
    if scope not in principal.scopes:
        if placed == 1 and quota is not None:
            await quota.release_async(reserve)
        raise PermissionDenied(
            f"this operation needs the {scope!r} scope; the token has {' '.join(principal.scopes) or 'none'}",
            scope=scope,
        )
    if quota is not None and placed != 1:
        # No room in the same call (first prune ended tasks), or not tried: the quota alone.
        await quota.reserve_async(reserve)
    return principal
