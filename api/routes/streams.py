"""Server-sent events: `GET /tasks/{task_id}/events` (one task) and `GET /tasks/stream` (every
task of the caller). `id:` is the event's stream position; reconnect with `Last-Event-ID`
(or `?last_event_id=`) to get every event after it, exactly once, in order.

Without `Last-Event-ID` a stream starts where `?from=` says: `now` (only what happens from
then on) or `start` (the whole history first). The client stream starts `now` by default: its
history grows with every task. A task's stream starts at its `start` by default: one task's
history is short, and the stream ends with the task's final event, so a stream opened on a
finished task replays it and ends instead of waiting forever."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aia_engine.errors import InvalidRequest, TooManyStreams
from aia_engine.events.body import parse_event_id
from aia_engine.events.replay import check_task, events_after, stream_head
from api.auth import require
from api.contract import Reply, header, operation, query
from api.deps import in_thread, resources
from api.streams import Selection, event_stream, task_selection

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


STARTS = ("now", "start")
LAST_EVENT_ID = header(
    "Last-Event-ID", str, "Resume after this event id (the `id:` of the last event received)."
)
EVENT_STREAM = Reply(description="An event stream", media="text/event-stream")
SSE = (
    "Server-sent events (`text/event-stream`). Each event: `id:` its stream position, "
    "`event:` its type, `data:` the same JSON as a webhook body (event_id, event_type, "
    "timestamp, sequence, data). Reconnect with `Last-Event-ID` to receive every later event "
    "once, in order. Comment lines are heartbeats. A task's stream ends after its final event. "
    "Knowledge-graph changes are not task events: GET /knowledge-graph/stream carries them."
)


def start_param(default: str) -> dict[str, Any]:
    return query(
        "from",
        Literal["now", "start"],
        "Without Last-Event-ID: `now` sends only events from then on, `start` replays the "
        "whole history first.",
        default=default,
    )


def _after(request: Request) -> int | None:
    """The position given by `Last-Event-ID` (or `?last_event_id=`); None when none is."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    pos = parse_event_id(raw)
    if pos is None:
        raise InvalidRequest(
            "Last-Event-ID must be an event id this API sent (a number or evt_<number>)",
            field="Last-Event-ID",
            provided_value=raw[:50],
        )
    return pos


def _start(request: Request, default: str) -> str:
    start = request.query_params.get("from", default)
    if start not in STARTS:
        raise InvalidRequest(
            "from must be 'now' (only new events) or 'start' (the whole history first)",
            field="from",
            provided_value=start[:50],
            allowed_values=list(STARTS),
        )
    return start


ReplayAfter = Callable[[int], list[tuple[int, dict[str, Any]]]]
"""Stored events of the stream after a position, in order (runs in a thread)."""


async def open_stream(
    request: Request,
    client_id: str,
    *,
    selection: Selection,
    replay_after: ReplayAfter,
    default_start: str,
) -> StreamingResponse:
    """An SSE stream of the client's events that `selection` takes: the stream limit per
    client, `Last-Event-ID` / `?from=`, replay from PostgreSQL, then live events and
    heartbeats. Every stream of a client counts against the same limit."""
    res = resources(request)
    after = _after(request)
    start = _start(request, default_start)
    member = f"sse_{secrets.token_hex(8)}"
    if not await in_thread(res.stream_slots.acquire, client_id, member):
        raise TooManyStreams(
            f"this client already has {res.settings.sse_max_streams_per_client} open event "
            "streams; close one first",
            limit=res.settings.sse_max_streams_per_client,
        ).with_headers({"Retry-After": str(int(res.settings.sse_heartbeat_s))})
    try:
        queue = await res.hub.listen(client_id)
    except Exception:
        res.stream_slots.release(client_id, member)
        raise
    if after is None:
        # Read after subscribing: what commits from here on reaches the queue or a resync.
        try:
            after = await in_thread(stream_head, res.sessions) if start == "now" else 0
        except Exception:
            res.hub.unlisten(client_id, queue)
            res.stream_slots.release(client_id, member)
            raise
    position = after

    async def replay(last: int) -> list[tuple[int, dict[str, Any]]]:
        return await in_thread(replay_after, last)

    async def renew() -> None:
        await in_thread(res.stream_slots.acquire, client_id, member)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in event_stream(
                hub=res.hub,
                client_id=client_id,
                selection=selection,
                after=position,
                replay=replay,
                heartbeat_s=res.settings.sse_heartbeat_s,
                on_heartbeat=renew,
                queue=queue,
            ):
                yield chunk
        finally:
            res.stream_slots.release(client_id, member)

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


async def _open_tasks(
    request: Request, client_id: str, task_id: str | None, *, default_start: str
) -> StreamingResponse:
    """A stream of task events only (of one task, or of all): never a graph change."""
    sessions = resources(request).sessions

    def replay_after(after: int) -> list[tuple[int, dict[str, Any]]]:
        return events_after(sessions, client_id=client_id, after=after, task_id=task_id)

    return await open_stream(
        request,
        client_id,
        selection=task_selection(task_id),
        replay_after=replay_after,
        default_start=default_start,
    )


@operation(
    "Stream task events",
    tag="streams",
    scope="read",
    params=[LAST_EVENT_ID, start_param("start")],
    responses={200: EVENT_STREAM},
    errors=("E012",),
    description=SSE,
)
async def task_events(request: Request) -> StreamingResponse:
    principal = await require(request, "read")
    task_id = request.path_params["task_id"]
    await in_thread(check_task, resources(request).sessions, task_id, client_id=principal.client_id)
    return await _open_tasks(request, principal.client_id, task_id, default_start="start")


@operation(
    "Stream client events",
    tag="streams",
    scope="read",
    params=[LAST_EVENT_ID, start_param("now")],
    responses={200: EVENT_STREAM},
    errors=("E012",),
    description=SSE,
)
async def client_stream(request: Request) -> StreamingResponse:
    principal = await require(request, "read")
    return await _open_tasks(request, principal.client_id, None, default_start="now")


routes = [
    Route("/tasks/stream", client_stream, methods=["GET"]),
    Route("/tasks/{task_id}/events", task_events, methods=["GET"]),
]
