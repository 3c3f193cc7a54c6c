"""Reading a server-sent event stream of the API, reconnecting until it ends.

`events()` opens the stream and yields its events. When the connection drops (a network error,
the server restarting, no byte for `idle_timeout` seconds although the server sends a heartbeat
every 15 s, an answer 502/503/504) it opens the stream again with `Last-Event-ID` set to the
last event received, so every event arrives once, in order (an event whose position is not past
the last one is skipped as well). Between attempts it backs off as requests do (exponential,
with jitter); after `reconnect_attempts` failures in a row it raises `AIAConnectionError`. An
event, or a connection that stayed open longer than `idle_timeout`, resets that count.

A 401 drops the token and opens again at once with a new one (a second 401 in a row raises
`AIAAuthenticationError`); a 429 waits its `Retry-After`; any other refusal raises its error
(`AIAValidationError` for bad filters, `AIANotFoundError` for an unknown task). The iterator
ends when `ends(event)` is true for an event it yielded (a task's final event), and never
otherwise: a stream the server closes without that event is reconnected.

Without `last_event_id` a stream starts where `start` says (`now` or `start`, the server's
`?from=`). The server opens every stream with its position (an `id:` line without data), so a
stream that started `now` and drops before its first event resumes from that position too,
missing nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse

from aia_client._backoff import retry_after
from aia_client._stream import (
    IDLE_TIMEOUT,
    RECONNECT_ATTEMPTS,
    ServerEvent,
    after_refusal,
    parse_event,
    parse_position,
)
from aia_client._sync._transport import SyncTransport
from aia_client.errors import AIAAPIError, AIAConnectionError, error_for

T = TypeVar("T")


def events(
    transport: SyncTransport,
    path: str,
    build: Callable[[dict[str, Any]], T],
    params: dict[str, Any] | None = None,
    *,
    last_event_id: str | int | None = None,
    start: str | None = None,
    ends: Callable[[ServerEvent], bool] | None = None,
    reconnect_attempts: int = RECONNECT_ATTEMPTS,
    idle_timeout: float = IDLE_TIMEOUT,
) -> Iterator[T]:
    """`build(body)` of each event of the stream at `path`, across reconnections (see the
    module's docstring). `ends` sees each event after its update was yielded."""
    last = parse_position(last_event_id) if last_event_id is not None else None
    config = transport.config
    timeout = httpx.Timeout(
        config.timeout, connect=config.connect_timeout, read=idle_timeout, pool=config.timeout
    )
    failures = 0
    renewed = False
    while True:
        wait: float | None = None
        token = transport.token()
        query, headers = _request(token, params, last, start)
        try:
            with connect_sse(
                transport.http, "GET", path, params=query, headers=headers, timeout=timeout
            ) as source:
                response = source.response
                if response.status_code != 200:
                    response.read()
                    wait = retry_after(response)
                    action = after_refusal(
                        response.status_code,
                        renewed=renewed,
                        wait=wait,
                        max_wait=config.max_retry_after,
                    )
                    if action == "raise":
                        raise error_for(response, retry_after=wait)
                    if action == "renew":
                        renewed = True
                        transport.token_rejected(token)
                        continue
                    failure = f"HTTP {response.status_code}"
                else:
                    _check_event_stream(response)
                    renewed = False
                    opened = time.monotonic()
                    for sse in source.iter_sse():
                        if sse.id and not sse.data:  # the position the stream starts at
                            start_at = parse_position(sse.id)
                            last = start_at if last is None else max(last, start_at)
                            continue
                        event = parse_event(sse.id, sse.event, sse.data)
                        if event is None or (last is not None and event.position <= last):
                            continue
                        last = event.position
                        failures = 0
                        yield build(event.body)
                        if ends is not None and ends(event):
                            return
                    # Closed without the end: the server is going away (a restart).
                    if time.monotonic() - opened > idle_timeout:
                        failures = 0
                    failure = "the server closed the stream"
        except httpx.TransportError as exc:  # refused, cut, or silent for idle_timeout
            failure = f"{type(exc).__name__}: {exc or 'connection failed'}"
        failures += 1
        if failures > reconnect_attempts:
            raise AIAConnectionError(
                f"event stream {config.base_url}{path}: {failures} failed attempts in a row, "
                f"the last: {failure}"
            )
        transport.backoff(failures, wait, reason=f"stream reconnect: {failure}")


def _request(
    token: str, params: dict[str, Any] | None, last: int | None, start: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The query and headers of one attempt: resume after `last`, else begin at `start`."""
    headers = {"Authorization": f"Bearer {token}"}
    query = dict(params or {})
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    elif start is not None:
        query["from"] = start
    return query, headers


def _check_event_stream(response: httpx.Response) -> None:
    kind = response.headers.get("content-type", "").partition(";")[0].strip()
    if kind != "text/event-stream":
        raise AIAAPIError(
            f"expected an event stream from {response.request.url}, got {kind or 'no type'!r}",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
