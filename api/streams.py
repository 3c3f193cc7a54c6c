"""Server-sent event streams: one Redis subscription per API process, fanned out to streams.

A stream first registers with the hub (so nothing published from then on is missed), then
replays what PostgreSQL holds after its `Last-Event-ID`, then follows the live messages,
skipping any it already sent. Every stream of a client hears the client's whole channel (task
events and knowledge-graph changes); its `Selection` says which of them it shows. Positions (`pos`, the SSE id) only grow, so "skip what is not
newer" gives every event exactly once, in order. When the hub may have missed messages (its
Redis connection dropped, a slow stream's buffer overflowed, the pump could not publish), it
tells each stream to resynchronise: replay from PostgreSQL again. An idle stream also checks
PostgreSQL at each heartbeat, so a lost message is at most one heartbeat late.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import redis

from aia_engine.events.body import TERMINAL_EVENTS, is_graph_event, parse_event_id
from aia_engine.events.pump import CHANNEL_PATTERN, RESYNC_CHANNEL
from aia_engine.redis.connect import async_client

log = logging.getLogger(__name__)
RESYNC: tuple[int, dict[str, Any]] = (-1, {})
PREFIX = CHANNEL_PATTERN.rstrip("*")
Replay = Callable[[int], "asyncio.Future[list[tuple[int, dict[str, Any]]]]"]


class StreamHub:
    def __init__(self, redis_url: str, *, buffer: int = 2000) -> None:
        self.redis_url = redis_url
        self.buffer = buffer
        self.listeners: dict[str, set[asyncio.Queue[tuple[int, dict[str, Any]]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._closed = False

    async def listen(self, client_id: str) -> asyncio.Queue[tuple[int, dict[str, Any]]]:
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="aia-stream-hub")
        queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue(self.buffer)
        self.listeners[client_id].add(queue)
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), 5)
        except TimeoutError:
            self.unlisten(client_id, queue)
            raise redis.ConnectionError("cannot subscribe to live events") from None
        return queue

    def unlisten(self, client_id: str, queue: asyncio.Queue[tuple[int, dict[str, Any]]]) -> None:
        found = self.listeners.get(client_id)
        if found is not None:
            found.discard(queue)
            if not found:
                del self.listeners[client_id]

    def _resync_all(self) -> None:
        for queues in self.listeners.values():
            for queue in queues:
                _push(queue, RESYNC)

    async def _run(self) -> None:
        first = True
        while not self._closed:
            client = async_client(self.redis_url, connect_timeout=2)
            try:
                pubsub = client.pubsub()
                await pubsub.psubscribe(CHANNEL_PATTERN)
                await pubsub.subscribe(RESYNC_CHANNEL)
                confirmed = 0
                while confirmed < 2:  # both subscriptions acknowledged
                    message = await pubsub.get_message(timeout=5)
                    if message is None:
                        raise redis.ConnectionError("no subscription confirmation")
                    if message["type"] in ("psubscribe", "subscribe"):
                        confirmed += 1
                assert self._ready is not None
                self._ready.set()
                if not first:
                    self._resync_all()  # what was published while we were away
                first = False
                async for message in pubsub.listen():
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live event subscription lost; reconnecting", exc_info=True)
                if self._ready is not None:
                    self._ready.clear()
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "message":  # the resync channel
            self._resync_all()
            return
        if kind != "pmessage":
            return
        channel = message["channel"]
        client_id = (channel.decode() if isinstance(channel, bytes) else channel)[len(PREFIX) :]
        queues = self.listeners.get(client_id)
        if not queues:
            return
        body = json.loads(message["data"])
        pos = parse_event_id(body.get("event_id", ""))
        if pos is None:
            return
        for queue in queues:
            _push(queue, (pos, body))

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _push(
    queue: asyncio.Queue[tuple[int, dict[str, Any]]], item: tuple[int, dict[str, Any]]
) -> None:
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        # A stream too slow for its buffer: drop what it holds and let it catch up from PG.
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(RESYNC)


def sse(pos: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    return f"id: {pos}\nevent: {body['event_type']}\ndata: {data}\n\n".encode()


Body = dict[str, Any]


def _never(_body: Body) -> bool:
    return False


@dataclass(frozen=True)
class Selection:
    """Which events of the client's channel a stream shows (`accepts`), and which one ends it
    (`ends`). Every stream of a client listens to the same channel, which carries its task
    events and its knowledge-graph changes alike; `replay` must return a subset of what
    `accepts` takes (the cursor filters replayed events too, so a wider replay is harmless)."""

    accepts: Callable[[Body], bool]
    ends: Callable[[Body], bool] = _never


def task_selection(task_id: str | None) -> Selection:
    """The task events of one task (ending with its final event), or of every task."""
    if task_id is None:
        return Selection(lambda body: not is_graph_event(body))

    def accepts(body: Body) -> bool:
        return body["data"].get("task_id") == task_id and not is_graph_event(body)

    return Selection(accepts, lambda body: body["event_type"] in TERMINAL_EVENTS)


class _Cursor:
    """Where a stream stands: the last position it has looked at (sent, or not selected), and
    whether it has ended. Positions only grow, so what is not newer has been seen."""

    def __init__(self, selection: Selection, after: int, replay: Callable[[int], Any]) -> None:
        self.selection, self.last, self.replay, self.done = selection, after, replay, False

    def take(self, pos: int, body: Body) -> bytes | None:
        if self.done or pos <= self.last:
            return None
        self.last = pos  # a resync need not read an unselected event again
        if not self.selection.accepts(body):
            return None
        if self.selection.ends(body):
            self.done = True  # e.g. a task's stream ends with its final event
        return sse(pos, body)

    async def catch_up(self) -> list[bytes]:
        out: list[bytes] = []
        while not self.done:
            rows = await self.replay(self.last)
            out.extend(chunk for pos, body in rows if (chunk := self.take(pos, body)))
            if len(rows) < 500:
                break
        return out


async def event_stream(
    *,
    hub: StreamHub,
    client_id: str,
    selection: Selection,
    after: int,
    replay: Callable[[int], Any],
    heartbeat_s: float,
    on_heartbeat: Callable[[], Any] | None = None,
    queue: asyncio.Queue[tuple[int, dict[str, Any]]],
) -> AsyncIterator[bytes]:
    """The body of one stream; `replay(after)` awaits PostgreSQL's events after a position."""
    cursor = _Cursor(selection, after, replay)
    try:
        # The stream's position before its first event: a client cut off before any event
        # resumes from here (Last-Event-ID) instead of "now" again, missing nothing.
        yield f"retry: 2000\nid: {after}\n\n".encode()
        for chunk in await cursor.catch_up():
            yield chunk
        next_beat = time.monotonic() + heartbeat_s
        while not cursor.done:
            try:
                pos, body = await asyncio.wait_for(
                    queue.get(), max(0.0, next_beat - time.monotonic())
                )
            except TimeoutError:
                next_beat = time.monotonic() + heartbeat_s
                if on_heartbeat is not None:
                    await on_heartbeat()
                pos, body = RESYNC
                yield b": keep-alive\n\n"
            if pos == RESYNC[0]:
                for chunk in await cursor.catch_up():
                    yield chunk
            elif (live := cursor.take(pos, body)) is not None:
                yield live
    finally:
        hub.unlisten(client_id, queue)
