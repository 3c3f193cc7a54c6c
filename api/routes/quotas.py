"""`GET /quotas`: where the calling client stands against its tier's limits."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import schemas
from api.auth import require
from api.contract import operation
from api.deps import in_thread, resources
from api.replies import reply


@operation("Get quotas", tag="limits", scope="read", responses={200: schemas.Quotas})
async def quotas(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    tiers = res.settings.rate_limit_tiers
    limits = tiers.get(principal.tier) or tiers["developer"]
    active = None
    if res.active_tasks is not None:
        active = await in_thread(res.active_tasks.usage, principal.client_id)
    decision = getattr(request.state, "rate_limit_decision", None)
    body: dict[str, Any] = {
        "client_id": principal.client_id,
        "tier": principal.tier,
        "enforced": res.limiter is not None,
        "requests": {
            "limit_per_hour": limits.per_hour,
            "limit_per_minute": limits.per_minute,
            "burst": limits.burst,
            "remaining_this_hour": decision.remaining if decision else None,
            "burst_remaining": int(decision.tokens) if decision else None,
            "window_reset": decision.window_reset if decision else None,
        },
        "active_tasks": {
            "limit": limits.max_active_tasks,
            "active": active,
            "remaining": None if active is None else max(0, limits.max_active_tasks - active),
        },
    }
    return reply(request, body)


routes = [Route("/quotas", quotas, methods=["GET"])]
