"""Business optimization cycles: POST /business-intelligence/execute-cycle starts one (a real
workflow on the engine), GET .../cycles and .../cycles/{id} read them, POST .../cancel stops one.
docs/bi-optimization.md."""

from __future__ import annotations

import contextlib
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.bi.cycle_request import CycleRequest, parse_cycle_request
from aia_engine.bi.cycles import cancel_cycle, get_cycle, list_cycles, start_cycle
from aia_engine.errors import InvalidRequest
from aia_engine.tasks.submit import new_task_id
from api import schemas
from api.auth import require
from api.body import json_body
from api.contract import Reply, operation, query
from api.deps import in_thread, quota_for, resources
from api.replies import reply
from api.routes.tasks import IDEMPOTENCY, REPLAYED, idempotency_key


@operation(
    "Execute business optimization cycle",
    tag="business-intelligence",
    scope="write",
    body=CycleRequest,
    params=[IDEMPOTENCY],
    responses={
        202: schemas.CycleAccepted,
        200: Reply(
            schemas.CycleAccepted, "Repeated Idempotency-Key: the first answer", headers=REPLAYED
        ),
    },
    errors=("E009", "E013", "E072", "E073"),
    description="202 `status: initiated`: the cycle's workflow (one analysis stage per focus "
    "area in parallel, then strategies, knapsack selection, plan) is committed and queued as a "
    "task; follow it at `links.self` (the plan appears there once built) or as the task. 422 "
    "E072 for a bad body (details.field), 429 E073 past AIA_BI_CYCLES_PER_DAY cycles in 24 "
    "hours (Retry-After). See docs/bi-optimization.md.",
)
async def execute_cycle(request: Request) -> Response:
    task_id = new_task_id()
    principal = await require(request, "write", reserve=(task_id,))
    res = resources(request)
    quota = quota_for(res, principal)
    try:
        cycle = parse_cycle_request(await json_body(request))
        body, created = await in_thread(
            start_cycle,
            res.sessions,
            cycle,
            settings=res.settings,
            publisher=res.publisher,
            gate=res.gate,
            client_id=principal.client_id,
            task_id=task_id,
            idempotency_key=idempotency_key(request),
        )
    except BaseException:
        if quota is not None:
            with contextlib.suppress(Exception):
                await quota.release_async([task_id])
        raise
    if not created:
        if quota is not None:  # an Idempotency-Key repeat: no new task
            await quota.release_async([task_id])
        return reply(request, body, status=200, headers={"Idempotent-Replayed": "true"})
    return reply(request, body, status=202)


@operation(
    "Get optimization cycle",
    tag="business-intelligence",
    scope="read",
    responses={200: schemas.CycleView},
)
async def get_one(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    body = await in_thread(
        get_cycle,
        res.sessions,
        request.path_params["optimization_id"],
        client_id=principal.client_id,
    )
    return reply(request, body)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
        raise InvalidRequest(
            "limit must be an integer from 1 to 100",
            field="limit",
            issue="out of range",
            provided_value=raw,
        )
    return int(raw)


@operation(
    "List optimization cycles",
    tag="business-intelligence",
    scope="read",
    params=[query("limit", Annotated[int, Field(ge=1, le=100)]), query("cursor", str)],
    responses={200: schemas.CycleList},
)
async def list_all(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    body = await in_thread(
        list_cycles,
        res.sessions,
        client_id=principal.client_id,
        limit=_limit(request),
        cursor=request.query_params.get("cursor"),
    )
    return reply(request, body)


@operation(
    "Cancel optimization cycle",
    tag="business-intelligence",
    scope="write",
    responses={200: schemas.CycleCancelled},
    errors=("E009",),
    description="Cancels the cycle's workflow like POST /tasks/{task_id}/cancel: stages not yet "
    "run never run, running ones are revoked (`cancelled_stages` lists them). Cancelling an "
    "already-cancelled cycle answers 200 again with `cancelled_stages: []`; a completed or "
    "failed cycle answers 409 E009.",
)
async def cancel(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    body = await in_thread(
        cancel_cycle,
        res.sessions,
        res.publisher,
        request.path_params["optimization_id"],
        client_id=principal.client_id,
    )
    return reply(request, body)


routes = [
    Route("/business-intelligence/execute-cycle", execute_cycle, methods=["POST"]),
    Route("/business-intelligence/cycles", list_all, methods=["GET"]),
    Route("/business-intelligence/cycles/{optimization_id}", get_one, methods=["GET"]),
    Route("/business-intelligence/cycles/{optimization_id}/cancel", cancel, methods=["POST"]),
]
