"""`GET /metrics`: the guide's JSON, or the Prometheus exposition for scrapers (`Accept:
text/plain` or `GET /metrics/prometheus`).

The JSON needs the `read` scope; its `business_metrics` count the caller's own tasks only
(system and API figures are host and request aggregates, no client's data). The exposition
holds system-wide task, stage and webhook figures of every client, so it needs `admin`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.metrics.collect import guide_metrics
from aia_engine.metrics.prometheus import exposition
from api import schemas
from api.auth import require
from api.contract import Reply, operation
from api.deps import in_thread, resources
from api.replies import reply

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@operation(
    "Get metrics",
    tag="monitoring",
    scope="read",
    responses={200: schemas.Metrics},
    description="The guide's JSON; `business_metrics` count the caller's own tasks. With "
    "`Accept: text/plain` the Prometheus exposition (also at /metrics/prometheus), whose figures "
    "cover every client and need `admin`.",
)
async def metrics(request: Request) -> Response:
    accept = request.headers.get("accept", "")
    if "text/plain" in accept and "application/json" not in accept:
        return await prometheus(request)
    principal = await require(request, "read")
    res = resources(request)
    return reply(
        request,
        await in_thread(guide_metrics, res.sessions, res.redis, client_id=principal.client_id),
    )


@operation(
    "Get Prometheus metrics",
    tag="monitoring",
    scope="admin",
    responses={
        200: Reply(description="Prometheus text exposition format 0.0.4", media="text/plain")
    },
)
async def prometheus(request: Request) -> Response:
    await require(request, "admin")
    return await _prometheus(request)


async def _prometheus(request: Request) -> Response:
    res = resources(request)
    local: dict[str, float] = {}
    if res.limiter is not None:  # the fallback limiter works per process: so are its figures
        local["rate_limiter_fallback_decisions"] = float(res.limiter.fallback_decisions)
        local["rate_limiter_degraded"] = float(res.limiter.degraded)
    if res.active_tasks is not None:
        local["quota_unenforced_submissions"] = float(res.active_tasks.unenforced)
    body = await in_thread(exposition, res.sessions, res.redis, local)
    return Response(body, media_type=PROMETHEUS)


routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/metrics/prometheus", prometheus, methods=["GET"]),
]
