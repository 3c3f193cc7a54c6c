"""What handlers share: the app's resources and running synchronous use cases off the loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from aia_engine.auth.revocation import RevokedFamilies
from aia_engine.auth.tokens import VerifiedTokens
from aia_engine.bi.cache import DashboardCache
from aia_engine.db.session import Sessions
from aia_engine.limits.limiter import RateLimiter
from aia_engine.limits.quota import ActiveTasks, ClientQuota
from aia_engine.ops.health import HealthMonitor
from aia_engine.publishing import Publisher, PublishGate
from aia_engine.redis.counters import Slots
from aia_engine.settings import Settings
from aia_engine.webhooks.urls import Resolver
from api.streams import StreamHub

T = TypeVar("T")


@dataclass
class Resources:
    settings: Settings
    sessions: Sessions
    publisher: Publisher
    gate: PublishGate
    redis: redis.Redis
    started_at: float
    counter: dict[str, int]
    tokens: VerifiedTokens
    resolve: Resolver
    """Host name resolution for webhook URL checks (tests give one that never leaves the machine)."""
    count_workers: Callable[[], int]
    """Live Celery workers answering a ping (raises when the broker is unreachable)."""
    send_deliveries: Callable[[Sequence[str]], None]
    """Queue webhook deliveries (by id) for the delivery workers."""
    webhook_http: httpx.Client
    """The HTTP client of test pings (no redirects, no proxies from the environment)."""
    hub: StreamHub
    """This process's subscription to live events, shared by its open streams."""
    stream_slots: Slots
    """Open event streams per client, across every API process."""
    limiter: RateLimiter | None
    """Per-client request limits (None when AIA_RATE_LIMITS_ENABLED is false)."""
    active_tasks: ActiveTasks | None
    """Per-client caps of active tasks (None when AIA_RATE_LIMITS_ENABLED is false)."""
    health: HealthMonitor
    """What `/health` reports, checked in background threads (started with the app)."""
    revoked: RevokedFamilies | None = None
    """Revoked refresh-token families (None when AIA_TOKEN_REVOCATION_CHECK is false)."""
    secret_checks: anyio.CapacityLimiter | None = None
    """Client-secret checks running at once (AIA_SECRET_CHECKS_PER_PROCESS); made when the app
    starts, since a limiter belongs to the running event loop."""
    graph_queries: anyio.CapacityLimiter | None = None
    """Knowledge-graph queries running at once (AIA_KG_QUERY_CONCURRENCY; CPU-bound, in
    threads of their own share); made when the app starts."""
    semantic_searches: anyio.CapacityLimiter | None = None
    """Semantic searches running at once (AIA_SEARCH_CONCURRENCY; the query's embedding is
    CPU-bound); made when the app starts."""
    bi_dashboards: DashboardCache | None = None
    """Business dashboards cached in Redis (aia_engine/bi/cache.py)."""
    bi_computations: anyio.CapacityLimiter | None = None
    """Dashboard computations on a miss running at once (AIA_BI_DASHBOARD_CONCURRENCY; each
    scans the client's purchases), on threads of their own; made when the app starts."""


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous use case (database, broker) in the thread pool."""
    return await run_in_threadpool(fn, *args, **kwargs)


def quota_for(res: Resources, principal: Any) -> ClientQuota | None:
    """The caller's active-task cap, from its tier."""
    if res.active_tasks is None:
        return None
    tiers = res.settings.rate_limit_tiers
    limits = tiers.get(principal.tier) or tiers["developer"]
    return ClientQuota(res.active_tasks, principal.client_id, limits.max_active_tasks)
