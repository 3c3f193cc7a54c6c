"""GET /business-intelligence/dashboard: the guide's dashboard, per client, from real data."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.bi.serving import serve_dashboard
from api import schemas
from api.auth import require
from api.contract import operation, query
from api.deps import in_thread, resources
from api.replies import reply


@operation(
    "Get the business dashboard",
    tag="business-intelligence",
    scope="read",
    params=[
        query(
            "month",
            Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")],
            "YYYY-MM; default: the month of the latest purchase (or the current month)",
        )
    ],
    responses={200: schemas.Dashboard},
    errors=["E068"],
    description="Revenue and customers from the client's knowledge graph (customer, product, "
    "PURCHASED, feedback), operations from the engine's records; null where there is no data. "
    "Cached briefly and recomputed in the background. See docs/business-intelligence.md.",
)
async def dashboard(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    body = await in_thread(
        serve_dashboard,
        res.bi_dashboards,
        res.sessions,
        principal.client_id,
        month=request.query_params.get("month"),
    )
    return reply(request, body)


routes = [Route("/business-intelligence/dashboard", dashboard, methods=["GET"])]
