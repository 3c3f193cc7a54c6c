"""User activity tracking and analytics, scoped to the calling client."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aia_engine import activity
from api.auth import require
from api.body import parse_model, read_json
from api.deps import in_thread, resources


async def track(request: Request) -> JSONResponse:
    principal = await require(request, "write")
    res = resources(request)
    raw = await read_json(
        request, limit=res.settings.max_body_bytes, max_depth=res.settings.max_json_depth
    )
    body = parse_model(activity.ActivityIn, raw)
    recorded = await in_thread(activity.track, res.sessions, body, client_id=principal.client_id)
    return JSONResponse(recorded, status_code=201)


async def user_analytics(request: Request) -> JSONResponse:
    principal = await require(request, "read")
    return JSONResponse(
        await in_thread(
            activity.analytics,
            resources(request).sessions,
            request.path_params["user_id"],
            client_id=principal.client_id,
            period=request.query_params.get("period", "7d"),
        )
    )


routes = [
    Route("/monitoring/track-user-activity", track, methods=["POST"]),
    Route("/monitoring/user-analytics/{user_id}", user_analytics, methods=["GET"]),
]
