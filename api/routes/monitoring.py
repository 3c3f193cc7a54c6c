"""User activity tracking and analytics, scoped to the calling client."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine import activity
from api import schemas
from api.auth import require
from api.body import json_body, parse_model
from api.contract import operation, path_param, query
from api.deps import in_thread, resources
from api.replies import reply


@operation(
    "Track user activity",
    tag="monitoring",
    scope="write",
    body=activity.ActivityIn,
    responses={201: schemas.ActivityRecorded},
)
async def track(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    body = parse_model(activity.ActivityIn, await json_body(request))
    recorded = await in_thread(activity.track, res.sessions, body, client_id=principal.client_id)
    return reply(request, recorded, status=201)


@operation(
    "Get user analytics",
    tag="monitoring",
    scope="read",
    params=[
        path_param("user_id", Annotated[str, Field(min_length=1, max_length=128)]),
        query("period", Literal["1h", "24h", "7d", "30d"]),
    ],
    responses={200: schemas.UserAnalytics},
)
async def user_analytics(request: Request) -> Response:
    principal = await require(request, "read")
    return reply(
        request,
        await in_thread(
            activity.analytics,
            resources(request).sessions,
            request.path_params["user_id"],
            client_id=principal.client_id,
            period=request.query_params.get("period", "7d"),
        ),
    )


routes = [
    Route("/monitoring/track-user-activity", track, methods=["POST"]),
    Route("/monitoring/user-analytics/{user_id}", user_analytics, methods=["GET"]),
]
