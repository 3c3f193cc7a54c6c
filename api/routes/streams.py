"""Server-sent events: `GET /tasks/{task_id}/events` (one task) and `GET /tasks/stream` (every
task of the caller). `id:` is the event's stream position; reconnect with `Last-Event-ID`
(or `?last_event_id=`) to get every event after it, exactly once, in order."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aia_engine.errors import InvalidRequest
from aia_engine.events.body import parse_event_id
from aia_engine.events.replay import check_task, events_after
from api.auth import require
from api.deps import in_thread, resources
from api.errors import ApiError
from api.streams import event_stream

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return 0
    pos = parse_event_id(raw)
    if pos is None:
        raise InvalidRequest(
            "Last-Event-ID must be an event id this API sent (a number or evt_<number>)",
            field="Last-Event-ID",
            provided_value=raw[:50],
        )
    return pos


async def _open(request: Request, client_id: str, task_id: str | None) -> StreamingResponse:
    res = resources(request)
    after = _after(request)
    member = f"sse_{secrets.token_hex(8)}"
    if not await in_thread(res.stream_slots.acquire, client_id, member):
        raise ApiError(
            "E012",
            f"this client already has {res.settings.sse_max_streams_per_client} open event "
            "streams; close one first",
            {"limit": res.settings.sse_max_streams_per_client},
            headers={"Retry-After": str(int(res.settings.sse_heartbeat_s))},
        )
    try:
        queue = await res.hub.listen(client_id)
    except Exception:
        res.stream_slots.release(client_id, member)
        raise

    async def replay(last: int) -> list[tuple[int, dict[str, Any]]]:
        return await in_thread(
            events_after, res.sessions, client_id=client_id, after=last, task_id=task_id
        )

    async def renew() -> None:
        await in_thread(res.stream_slots.acquire, client_id, member)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in event_stream(
                hub=res.hub,
                client_id=client_id,
                task_id=task_id,
                after=after,
                replay=replay,
                heartbeat_s=res.settings.sse_heartbeat_s,
                on_heartbeat=renew,
                queue=queue,
            ):
                yield chunk
        finally:
            res.stream_slots.release(client_id, member)

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


async def task_events(request: Request) -> StreamingResponse:
    principal = await require(request, "read")
    task_id = request.path_params["task_id"]
    await in_thread(check_task, resources(request).sessions, task_id, client_id=principal.client_id)
    return await _open(request, principal.client_id, task_id)


async def client_stream(request: Request) -> StreamingResponse:
    principal = await require(request, "read")
    return await _open(request, principal.client_id, None)


routes = [
    Route("/tasks/stream", client_stream, methods=["GET"]),
    Route("/tasks/{task_id}/events", task_events, methods=["GET"]),
]
