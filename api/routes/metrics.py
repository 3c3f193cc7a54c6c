"""`GET /metrics`: the guide's JSON, or the Prometheus exposition for scrapers (`Accept:
text/plain` or `GET /metrics/prometheus`). Figures are system-wide aggregates (no task of any
client is shown); a token with the `read` scope is required."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aia_engine.metrics.collect import guide_metrics
from aia_engine.metrics.prometheus import exposition
from api.auth import require
from api.deps import in_thread, resources

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: Request) -> Response:
    await require(request, "read")
    res = resources(request)
    accept = request.headers.get("accept", "")
    if "text/plain" in accept and "application/json" not in accept:
        return await _prometheus(request)
    return JSONResponse(await in_thread(guide_metrics, res.sessions, res.redis))


async def prometheus(request: Request) -> Response:
    await require(request, "read")
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
