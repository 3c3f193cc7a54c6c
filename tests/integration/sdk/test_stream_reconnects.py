"""How an SDK stream reconnects, against a real uvicorn serving a scripted event stream: each
connection gets the next answer of a script (a 503, a 429 with Retry-After, a 401, events then
a close, events then silence), which the engine's API cannot be made to give on demand.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aia_client import (
    AIAAuthenticationError,
    AIAConnectionError,
    AIAStreamingClient,
    AIAValidationError,
    TaskUpdate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.integration.api.conftest import serve

Answer = tuple[str, Any]
"""("status", (code, headers)) | ("events", [positions]) then the connection closes |
("head", position): the opening `id:` with the stream's position, then the connection closes |
("silent", [positions]) then nothing more, the connection left open."""


@dataclass
class Script:
    answers: list[Answer] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)
    """Each connection's Last-Event-ID, from and Authorization, and when it came."""
    tokens: int = 0


def body(pos: int, event_type: str = "task.progress") -> dict[str, Any]:
    return {
        "event_id": f"evt_{pos}",
        "event_type": event_type,
        "timestamp": "2025-10-03T12:00:00Z",
        "sequence": pos,
        "data": {"task_id": "task_1", "status": "in_progress", "progress": float(pos)},
    }


def scripted_app(script: Script) -> Starlette:
    async def token(_request: Request) -> Response:
        script.tokens += 1
        return JSONResponse({"access_token": f"token{script.tokens}", "expires_in": 3600})

    async def stream(request: Request) -> Response:
        script.seen.append(
            {
                "last": request.headers.get("last-event-id", ""),
                "from": request.query_params.get("from", ""),
                "auth": request.headers.get("authorization", ""),
                "at": str(time.monotonic()),
            }
        )
        kind, arg = script.answers.pop(0) if script.answers else ("silent", [])
        if kind == "status":
            status, headers = arg
            envelope = {"error": {"code": f"E{status}", "message": "scripted", "details": {}}}
            return JSONResponse(envelope, status_code=status, headers=headers)

        async def events() -> AsyncIterator[bytes]:
            if kind == "head":
                yield f"retry: 2000\nid: {arg}\n\n".encode()
                return
            yield b"retry: 2000\n\n"
            for pos in arg:
                data = json.dumps(body(pos, "task.completed" if pos == 99 else "task.progress"))
                yield f"id: {pos}\nevent: x\ndata: {data}\n\n".encode()
            if kind == "silent":
                await asyncio.Event().wait()  # until the client goes away

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/auth/token", token, methods=["POST"]),
            Route("/tasks/stream", stream),
            Route("/tasks/{task_id}/events", stream),
        ]
    )


@pytest.fixture
def scripted() -> Iterator[tuple[Script, str]]:
    script = Script()
    server, thread, url = serve(scripted_app(script))
    yield script, url
    server.should_exit = True
    thread.join(10)


def client(url: str, **kwargs: Any) -> AIAStreamingClient:
    return AIAStreamingClient("id", "secret", base_url=url, **kwargs)


def read(url: str, count: int, **kwargs: Any) -> list[TaskUpdate]:
    async def go() -> list[TaskUpdate]:
        async with client(url, **kwargs) as streams:
            got: list[TaskUpdate] = []
            async for update in streams.tasks.stream_all():
                got.append(update)
                if len(got) == count:
                    break
            return got

    return asyncio.run(asyncio.wait_for(go(), 30))


def positions(updates: list[TaskUpdate]) -> list[int]:
    return [int(u.event_id.removeprefix("evt_")) for u in updates]


def test_a_closed_connection_and_503s_are_reconnected_after_the_last_event(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.answers = [
        ("events", [1, 2]),
        ("status", (503, {})),
        ("events", [2, 3]),  # 2 again: a server that repeats is not repeated
        ("status", (502, {})),
        ("events", [4]),
    ]
    assert positions(read(url, 4)) == [1, 2, 3, 4]
    assert [s["last"] for s in script.seen] == ["", "2", "2", "3", "3"]
    assert script.seen[0]["from"] == "now" and script.tokens == 1


def test_a_stream_cut_before_its_first_event_resumes_from_the_position_it_opened_at(
    scripted: tuple[Script, str],
) -> None:
    """The API opens every stream with its position (`id:` and no data): a stream that began
    `now` and dropped before any event must not begin `now` again (missing what happened in
    between) but resume after that position."""
    script, url = scripted
    script.answers = [("head", 7), ("events", [8, 9])]
    assert positions(read(url, 2)) == [8, 9]
    assert [s["last"] for s in script.seen] == ["", "7"]


def test_a_silent_connection_is_dropped_after_the_idle_timeout(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.answers = [("silent", [1]), ("events", [2])]
    started = time.monotonic()
    assert positions(read(url, 2, idle_timeout=0.5)) == [1, 2]
    assert script.seen[1]["last"] == "1"
    assert float(script.seen[1]["at"]) - started >= 0.5


def test_a_429_waits_its_retry_after(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [("status", (429, {"Retry-After": "1"})), ("events", [5])]
    assert positions(read(url, 1)) == [5]
    waited = float(script.seen[1]["at"]) - float(script.seen[0]["at"])
    assert 1.0 <= waited < 3.0


def test_a_401_renews_the_token_once(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [("status", (401, {})), ("events", [1])]
    assert positions(read(url, 1)) == [1]
    assert [s["auth"] for s in script.seen] == ["Bearer token1", "Bearer token2"]
    script.answers = [("status", (401, {})), ("status", (401, {}))]
    with pytest.raises(AIAAuthenticationError):
        read(url, 1)


def test_a_4xx_raises_and_failures_in_a_row_are_bounded(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [("status", (400, {}))]
    with pytest.raises(AIAValidationError):
        read(url, 1)
    script.answers = [("status", (503, {}))] * 3
    with pytest.raises(AIAConnectionError, match="3 failed attempts in a row, the last: HTTP 503"):
        read(url, 1, reconnect_attempts=2)


def test_a_task_stream_ends_after_the_final_event(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [("silent", [7, 99])]  # 99: task.completed, then the server says nothing

    async def go() -> list[TaskUpdate]:
        async with client(url) as streams:
            return [u async for u in streams.tasks.stream("task_1")]

    got = asyncio.run(asyncio.wait_for(go(), 5))  # well within the 45 s idle timeout
    assert positions(got) == [7, 99] and got[-1].final
    assert script.seen[0]["from"] == "start"
