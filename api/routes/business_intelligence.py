"""GET /business-intelligence/dashboard: the guide's dashboard, per client, from real data."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.bi import serving
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
    errors=["E068", "E503"],
    description="Revenue and customers from the client's knowledge graph (customer, product, "
    "PURCHASED, feedback), operations from the engine's records; null where there is no data. "
    "Cached briefly and recomputed in the background; when a computation cannot start within "
    "AIA_BI_DASHBOARD_WAIT_S, the last cached answer (any age) or 503 E503 with Retry-After. "
    "See docs/business-intelligence.md.",
)
async def dashboard(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    client_id, month = principal.client_id, request.query_params.get("month")
    serving.check_month(month)  # pure: no I/O
    body = await in_thread(serving.cached, res.bi_dashboards, res.sessions, client_id, month=month)
    if body is None:
        # A miss computes (a scan of the client's purchases) on the dashboards' own threads, so
        # misses never fill the shared pool; a request that cannot get one in time does not
        # compute at all (serving.busy: the entry at any age, else 503).
        compute = partial(serving.computed, res.bi_dashboards, res.sessions, client_id, month=month)
        with anyio.move_on_after(res.settings.bi_dashboard_wait_s):
            body = await anyio.to_thread.run_sync(compute, limiter=res.bi_computations)
        if body is None:
            body = await in_thread(serving.busy, res.bi_dashboards, client_id, month=month)
    return reply(request, body)


routes = [Route("/business-intelligence/dashboard", dashboard, methods=["GET"])]
