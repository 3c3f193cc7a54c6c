"""Request ids, request counting and the per-request timeout (pure ASGI, no BaseHTTPMiddleware)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aia_engine.activity import RequestLog
from aia_engine.errors import EngineError, InvalidRequest, NotFound, RequestTimedOut
from aia_engine.metrics.client_requests import ClientRequestStats
from aia_engine.metrics.requests import RequestCounter
from api.errors import envelope

log = logging.getLogger(__name__)
requests_log = logging.getLogger("aia_engine.requests")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Sets `request.state.request_id` (from X-Request-ID or new), echoes it, counts requests,
    and answers 504 in the envelope when a request runs past `timeout_s`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        timeout_s: float,
        slow_timeouts: dict[tuple[str, str], float] | None = None,
        counter: dict[str, int],
        requests: RequestCounter | None = None,
        activity: RequestLog | None = None,
        client_stats: ClientRequestStats | None = None,
    ) -> None:
        self.app = app
        self.client_stats = client_stats
        self.timeout_s = timeout_s
        self.slow_timeouts = slow_timeouts or {}
        """Longer timeouts by (method, path): uploads that stream a large body."""
        self.counter = counter
        self.requests = requests
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else f"req_{secrets.token_hex(8)}"
        scope.setdefault("state", {})["request_id"] = request_id
        self.counter["requests"] = self.counter.get("requests", 0) + 1
        started = False
        app: ASGIApp = refuse_nul(scope) or self.app

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [(b"x-request-id", request_id.encode())]
                limited = scope["state"].get("rate_limit_headers")
                if limited:  # on every response to an identified client: 2xx, 4xx and 429
                    have = {k.lower() for k, _ in message.get("headers", [])}
                    extra += [
                        (k.lower().encode(), v.encode())
                        for k, v in limited.items()
                        if k.lower().encode() not in have
                    ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        began = time.perf_counter()
        status = {"code": 0, "bytes": 0}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                status["stream"] = int(kind.startswith(b"text/event-stream"))
            elif message["type"] == "http.response.body":
                status["bytes"] += len(message.get("body", b""))
            await send_with_id(message)

        timeout_s = self.slow_timeouts.get((scope["method"], scope["path"]), self.timeout_s)
        try:
            await self._until_started(app(scope, receive, send_logged), lambda: started, timeout_s)
        except TimeoutError:
            response = envelope(
                Request(scope),
                RequestTimedOut.code,
                f"request took longer than {timeout_s:g}s",
                {"timeout_s": timeout_s},
            )
            await response(scope, receive, send_logged)
        except ClientDisconnect:
            log.debug("client went away during request %s", request_id)
        except Exception as exc:
            # Handled here rather than by Starlette's ServerErrorMiddleware, so the 500 carries
            # the request id too; logged once, with the request's context, never in the body.
            if started:
                raise
            request = Request(scope)
            log.error(
                "unhandled error on %s %s (request %s)",
                request.method,
                request.url.path,
                request_id,
                exc_info=exc,
            )
            response = envelope(
                request,
                EngineError.code,
                "unexpected server error; contact support with the request_id",
            )
            await response(scope, receive, send_logged)
        finally:
            self._after(scope, request_id, status, began)

    def _after(self, scope: Scope, request_id: str, status: dict[str, int], began: float) -> None:
        """The request's log line, metrics and (when it names a user) activity row."""
        elapsed_ms = (time.perf_counter() - began) * 1000
        if self.requests is not None and status["code"]:
            self.requests.record(status["code"], elapsed_ms)
        client_id = scope["state"].get("client_id")
        # The dashboard's response time; a stream lasts as long as its client listens, and an
        # upload (a route with its own, longer timeout) as long as its body takes to arrive.
        if (
            self.client_stats is not None
            and client_id
            and status["code"]
            and not status.get("stream")
            and (scope.get("method"), scope.get("path")) not in self.slow_timeouts
        ):
            self.client_stats.record(client_id, elapsed_ms)
        self._log_activity(scope, status, elapsed_ms)
        requests_log.info(
            "%s %s %s",
            scope.get("method"),
            scope.get("path"),
            status["code"] or "-",
            extra={
                "request_id": request_id,
                "client_id": scope["state"].get("client_id"),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status["code"] or None,
                "duration_ms": round(elapsed_ms, 2),
            },
        )

    def _log_activity(self, scope: Scope, status: dict[str, int], elapsed_ms: float) -> None:
        """A request naming its user (X-User-ID) from an identified client joins that user's
        activity (see GET /monitoring/user-analytics)."""
        client_id = scope["state"].get("client_id")
        if self.activity is None or not client_id or not status["code"]:
            return
        headers = dict(scope["headers"])
        user = headers.get(b"x-user-id", b"").decode("latin-1")[:128]
        if not user:
            return
        sent_in = headers.get(b"content-length", b"0")
        self.activity.record(
            client_id=client_id,
            user_id=user,
            session_id=headers.get(b"x-session-id", b"").decode("latin-1")[:128] or None,
            activity_type="api_request",
            source="api",
            endpoint=str(scope.get("path", ""))[:512],
            status_code=status["code"],
            response_time_ms=round(elapsed_ms, 2),
            bytes=status["bytes"] + (int(sent_in) if sent_in.isdigit() else 0),
            occurred_at=datetime.now(UTC),
            details={"method": scope.get("method")},
            context={},
        )

    async def _until_started(
        self, call: Any, started: Callable[[], bool], timeout_s: float
    ) -> None:
        """Run the request; past `timeout_s` without a response started, cancel it and raise
        TimeoutError. Once the response has started (a stream), it runs as long as it needs."""
        task = asyncio.ensure_future(call)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not task.done():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                if started():
                    await task
                    return
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise TimeoutError
            await asyncio.wait({task}, timeout=remaining)
        task.result()


def refuse_nul(scope: Scope) -> JSONResponse | None:
    """The answer to a path or query holding a NUL character (`%00`), which PostgreSQL's text
    refuses and no id, name or filter can contain: 404 for a path, 422 naming the query
    parameter. None for every other request. (Headers cannot carry NUL: the HTTP server
    refuses them with 400.)"""
    path = scope.get("path", "")
    if "\x00" in path:
        return envelope(
            Request(scope),
            NotFound.code,
            "nothing is named with a NUL character (%00): no resource at this path",
            {"path": path.replace("\x00", "%00")[:300]},
        )
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            field = name.replace("\x00", "%00")[:100]
            return envelope(
                Request(scope),
                InvalidRequest.code,
                f"query parameter {field!r} holds a NUL character (%00), which no value may hold",
                {
                    "field": field,
                    "issue": "NUL character",
                    "provided_value": value.replace("\x00", "%00")[:200],
                },
            )
    return None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
