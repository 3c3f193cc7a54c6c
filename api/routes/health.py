"""GET /health: PostgreSQL, Redis, live workers and the knowledge graph (its tables in
PostgreSQL answer), as the background checks last saw them (`aia_engine.ops.health`); 503
naming what has failed for longer than the grace period."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import aia_engine
from api import schemas
from api.contract import Reply, operation
from api.deps import resources
from api.errors import now_iso
from api.replies import reply


@operation(
    "Health",
    tag="system",
    responses={200: schemas.Health, 503: Reply(schemas.Health, "Degraded")},
)
async def health(request: Request) -> Response:
    """Reads state only: no database query, no Redis command, no worker ping here."""
    res = resources(request)
    report = res.health.report()
    services = dict(report.services)
    workers = services.pop("workers", "healthy")
    services["workers"] = workers
    services["multi_agent_system"] = workers
    body: dict[str, Any] = {
        "status": "degraded" if report.failing else "healthy",
        "timestamp": now_iso(),
        "version": aia_engine.__version__,
        "services": services,
        "uptime": int(time.monotonic() - res.started_at),
        "request_count": res.counter.get("requests", 0),
        "workers_alive": report.workers,
    }
    if report.failing:
        body["failing_services"] = [
            *report.failing,
            *(["multi_agent_system"] if "workers" in report.failing else []),
        ]
    return reply(request, body, status=503 if report.failing else 200)


@operation(
    "Liveness",
    tag="system",
    operation_id="live",
    description="This process answers; no dependency is checked.",
    responses={200: Reply(schemas.Alive, "Alive")},
)
async def live(request: Request) -> Response:
    """Liveness: this process answers (no dependency checked; container health checks use it,
    so an API is not restarted because a worker or PostgreSQL is down)."""
    return reply(request, {"status": "alive", "version": aia_engine.__version__})


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
]
