"""GET /health: real checks of PostgreSQL, Redis and live workers; 503 naming what failed."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import aia_engine
from api.deps import Resources, in_thread, resources
from api.errors import now_iso

_CACHE_S = 2.0
_lock = threading.Lock()
_cache: dict[int, tuple[float, dict[str, Any]]] = {}


def check_services(res: Resources) -> dict[str, Any]:
    """Each dependency's state (cached two seconds, so health checks cannot overload them)."""
    with _lock:
        hit = _cache.get(id(res))
        if hit and time.monotonic() - hit[0] < _CACHE_S:
            return hit[1]
    services: dict[str, Any] = {}
    try:
        with res.sessions.begin() as session:
            session.execute(text("SELECT 1"))
        services["database"] = "healthy"
    except Exception as exc:
        services["database"] = f"unhealthy: {type(exc).__name__}"
    try:
        res.redis.ping()
        services["redis"] = "healthy"
    except Exception as exc:
        services["redis"] = f"unhealthy: {type(exc).__name__}"
    workers = 0
    try:
        workers = res.count_workers() if services["redis"] == "healthy" else 0
        services["workers"] = "healthy" if workers else "unhealthy: no worker answered"
    except Exception as exc:
        services["workers"] = f"unhealthy: {type(exc).__name__}"
    services["multi_agent_system"] = services["workers"]
    services["knowledge_graph"] = "not_configured"
    result = {"services": services, "workers": workers}
    with _lock:
        _cache[id(res)] = (time.monotonic(), result)
    return result


async def health(request: Request) -> JSONResponse:
    res = resources(request)
    checked = await in_thread(check_services, res)
    services = checked["services"]
    failing = [name for name, state in services.items() if str(state).startswith("unhealthy")]
    body = {
        "status": "degraded" if failing else "healthy",
        "timestamp": now_iso(),
        "version": aia_engine.__version__,
        "services": services,
        "uptime": int(time.monotonic() - res.started_at),
        "request_count": res.counter.get("requests", 0),
        "workers_alive": checked["workers"],
    }
    if failing:
        body["failing_services"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)


async def live(_request: Request) -> JSONResponse:
    """Liveness: this process answers (no dependency checked; container health checks use it,
    so an API is not restarted because a worker or PostgreSQL is down)."""
    return JSONResponse({"status": "alive", "version": aia_engine.__version__})


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
]
