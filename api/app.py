"""create_app(settings) -> Starlette; app_from_env() for uvicorn."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
import redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.middleware import Middleware

from aia_engine.activity import RequestLog
from aia_engine.agents import known_agents
from aia_engine.auth.revocation import Reloader, RevokedFamilies
from aia_engine.auth.tokens import VerifiedTokens
from aia_engine.bi.cache import DashboardCache
from aia_engine.db.session import Sessions, make_engine, make_sessions
from aia_engine.limits.limiter import RateLimiter
from aia_engine.limits.quota import ActiveTasks
from aia_engine.metrics.client_requests import ClientRequestStats
from aia_engine.metrics.host import HOST_CPU
from aia_engine.metrics.requests import RequestCounter
from aia_engine.ops.health import HEALTHY, HealthMonitor
from aia_engine.ops.logs import configure as configure_logging
from aia_engine.ops.logs import flush as flush_logs
from aia_engine.publishing import Publisher, PublishGate, PublishPipeline
from aia_engine.redis.connect import multiplexed, sync_client
from aia_engine.redis.counters import Slots
from aia_engine.settings import Settings, get_settings
from aia_engine.webhooks.delivery import http_client
from aia_engine.webhooks.urls import Resolver, system_resolver
from api.deps import Resources
from api.errors import EXCEPTION_HANDLERS, unavailable
from api.middleware import RequestContext
from api.routes import ROUTES
from api.streams import StreamHub

log = logging.getLogger(__name__)


def _celery_defaults(
    settings: Settings,
) -> tuple[Publisher, Callable[[], int], Callable[[Sequence[str]], None]]:
    # The only place the API touches the workers package: publisher, worker ping, deliveries.
    from workers.app import use_redis
    from workers.dispatch import CeleryPublisher, send_deliveries

    app = use_redis(settings.require_redis_url())

    def count_workers() -> int:  # in a background thread of /health, never in a request
        return len(app.control.ping(timeout=1.0) or [])

    def send(ids: Sequence[str]) -> None:
        send_deliveries(app, ids)

    return CeleryPublisher.from_settings(settings, app), count_workers, send


def _limiter(settings: Settings, sessions: Sessions) -> RateLimiter:
    client = multiplexed(settings.require_redis_url())

    def degraded(now_degraded: bool) -> None:
        if now_degraded:  # one alert per 5-minute episode, however many API processes see it
            threading.Thread(target=_limiter_alert, args=(sessions,), daemon=True).start()

    return RateLimiter(
        client,
        settings.rate_limit_tiers,
        share=settings.rate_limit_share or settings.api_workers,
        on_degraded=degraded,
        retry_s=settings.rate_limit_retry_s,
    )


def _limiter_alert(sessions: Sessions) -> None:
    from aia_engine.clock import utcnow
    from aia_engine.ops.alerts import raise_alert

    now = utcnow()
    with sessions.begin() as session:
        raise_alert(
            session,
            dedupe_key=f"rate_limiter_degraded:{int(now.timestamp()) // 300}",
            alert_type="rate_limiter_degraded",
            severity="warning",
            message="Redis is unreachable: each API process now limits requests on its own",
            now=now,
        )


_KG_TABLES = text(
    "SELECT (SELECT count(*) FROM kg_graphs), EXISTS (SELECT 1 FROM kg_nodes), "
    "EXISTS (SELECT 1 FROM kg_relationships)"
)


def _health_monitor(
    settings: Settings,
    sessions: Sessions,
    redis_conn: redis.Redis,
    count_workers: Callable[[], int],
) -> HealthMonitor:
    def database() -> str:
        with sessions.begin() as session:
            session.execute(text("SELECT 1"))
        return HEALTHY

    def redis_ping() -> str:
        redis_conn.ping()
        return HEALTHY

    def knowledge_graph() -> str:
        # The graph lives in PostgreSQL: healthy when its tables answer (index-only reads).
        with sessions.begin() as session:
            session.execute(_KG_TABLES)
        return HEALTHY

    return HealthMonitor(
        {"database": database, "redis": redis_ping, "knowledge_graph": knowledge_graph},
        count_workers=count_workers,
        interval_s=settings.health_interval_s,
        grace_s=settings.health_grace_s,
    )


def _flush_client_stats(stats: ClientRequestStats, sessions: Sessions) -> None:
    try:
        stats.flush(sessions)
    except Exception:
        log.warning("could not write per-client request figures; will retry", exc_info=True)


def create_app(
    settings: Settings,
    *,
    sessions: Sessions | None = None,
    publisher: Publisher | None = None,
    redis_client: redis.Redis | None = None,
    count_workers: Callable[[], int] | None = None,
    resolver: Resolver = system_resolver,
) -> Starlette:
    # Load every agent now: a module named in AIA_AGENT_MODULES that cannot be imported stops
    # the start instead of failing the first request that names an agent.
    known_agents()
    default_publisher, default_count, send = _celery_defaults(settings)
    publisher = publisher or default_publisher
    count_workers = count_workers or default_count
    own_sessions = sessions is None
    sessions = sessions or make_sessions(make_engine(settings, pool_size=settings.api_db_pool_size))
    counter: dict[str, int] = {}
    gate = PublishGate(settings.publish_backoff_s)
    pipeline = gate.pipeline = PublishPipeline(sessions, publisher, gate)
    redis_conn = redis_client or sync_client(
        settings.require_redis_url(), connect_timeout=1, timeout=2
    )
    res = Resources(
        settings=settings,
        sessions=sessions,
        publisher=publisher,
        gate=gate,
        redis=redis_conn,
        started_at=time.monotonic(),
        counter=counter,
        count_workers=count_workers,
        tokens=VerifiedTokens(),
        resolve=resolver,
        send_deliveries=send,
        webhook_http=http_client(settings),
        hub=StreamHub(settings.require_redis_url()),
        stream_slots=Slots(
            redis_conn,
            prefix="aia:streams:",
            cap=settings.sse_max_streams_per_client,
            hold_s=settings.sse_heartbeat_s * 2 + 30,
            fail_open=False,
        ),
        limiter=_limiter(settings, sessions) if settings.rate_limits_enabled else None,
        active_tasks=ActiveTasks(
            redis_conn, sessions, fast=multiplexed(settings.require_redis_url())
        )
        if settings.task_quotas_enabled
        else None,
        health=_health_monitor(settings, sessions, redis_conn, count_workers),
        bi_dashboards=DashboardCache(
            redis_conn,
            ttl_s=settings.bi_dashboard_ttl_s,
            stale_s=settings.bi_dashboard_stale_s,
            wait_s=settings.bi_dashboard_wait_s,
            background=settings.bi_dashboard_concurrency,
        ),
        revoked=RevokedFamilies(
            sessions,
            redis_conn,
            multiplexed(settings.require_redis_url()),
            token_lifetime_s=settings.jwt_expiry_minutes * 60,
        )
        if settings.token_revocation_check
        else None,
    )
    reloader = (
        Reloader(res.revoked, settings.revocation_poll_s) if res.revoked is not None else None
    )

    request_counter, request_log = RequestCounter(), RequestLog()
    client_stats = ClientRequestStats()
    stop_flushing = threading.Event()

    def flush() -> None:
        request_counter.flush(redis_conn)
        try:
            request_log.flush(sessions)
        except Exception:
            log.warning("could not write the user activity log; will retry", exc_info=True)
        _flush_client_stats(client_stats, sessions)

    def flush_loop() -> None:  # request counts into Redis, user activity into PostgreSQL
        while not stop_flushing.wait(settings.metrics_flush_s):
            flush()
        flush()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # No more request threads than pooled database connections: past the pool, each
        # request would open (and close) an overflow connection, a few milliseconds each.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_db_pool_size
        res.secret_checks = anyio.CapacityLimiter(settings.secret_checks_per_process)
        res.graph_queries = anyio.CapacityLimiter(settings.kg_query_concurrency)
        res.semantic_searches = anyio.CapacityLimiter(settings.search_concurrency)
        res.bi_computations = anyio.CapacityLimiter(settings.bi_dashboard_concurrency)
        HOST_CPU.prime()  # so the first `cpu_usage` reading measures an interval
        flusher = threading.Thread(target=flush_loop, name="aia-metrics-flush", daemon=True)
        flusher.start()
        if reloader is not None:
            reloader.start()
        await anyio.to_thread.run_sync(res.health.start)  # the first results, then serve
        yield
        res.health.stop()
        stop_flushing.set()
        flusher.join(5)
        if reloader is not None:
            reloader.stop()
        pipeline.close()  # send what was accepted before the process goes
        res.webhook_http.close()
        await res.hub.close()
        if res.limiter is not None:
            await res.limiter.close()
        if res.active_tasks is not None and res.active_tasks.fast is not None:
            await res.active_tasks.fast.close()
        if res.revoked is not None:
            await res.revoked.fast.close()
        if own_sessions:
            sessions.kw["bind"].dispose()
        flush_logs()

    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                RequestContext,
                timeout_s=settings.request_timeout_s,
                counter=counter,
                requests=request_counter,
                activity=request_log,
                client_stats=client_stats,
            )
        ],
        exception_handlers={
            **EXCEPTION_HANDLERS,
            OperationalError: unavailable,
            redis.RedisError: unavailable,
        },
        lifespan=lifespan,
    )
    app.state.resources = res
    return app


def app_from_env() -> Starlette:
    """The zero-argument factory uvicorn calls (`uvicorn --factory api.app:app_from_env`)."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, background=True)
    return create_app(settings)
