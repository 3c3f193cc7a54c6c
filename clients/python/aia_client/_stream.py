"""The pure half of the event streams (shared by the async and the sync client): reading an
event, and what to do when a stream cannot be opened. `_async/_sse.py` does the I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from aia_client._backoff import RETRYABLE_STATUSES

IDLE_TIMEOUT = 45.0
"""Seconds without a byte after which a stream counts as dropped: three of the server's
heartbeats (AIA_SSE_HEARTBEAT_S, 15 s by default), so one late heartbeat is not a drop."""
RECONNECT_ATTEMPTS = 10
"""Failed reconnections in a row (with backoff between them) before a stream gives up."""


@dataclass(frozen=True)
class ServerEvent:
    """One event of a stream: its position (the SSE `id:`), its type and its JSON body."""

    position: int
    event: str
    body: dict[str, Any]


def parse_position(value: str | int) -> int:
    """The stream position in an event id: `evt_<n>` (an update's `event_id`) or `<n>`."""
    raw = str(value).strip().removeprefix("evt_")
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"not an event id of this API: {value!r} (evt_<number> or a number)")
    return int(raw)


def parse_event(event_id: str, event: str, data: str) -> ServerEvent | None:
    """The event, or None for what carries no event (the `retry:` advice, an id-less block)."""
    if not data or not event_id:
        return None
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError(f"an event's data is not a JSON object: {data[:200]!r}")
    return ServerEvent(parse_position(event_id), event, body)


Action = Literal["renew", "retry", "raise"]


def after_refusal(
    status: int, *, renewed: bool, wait: float | None = None, max_wait: float = 120.0
) -> Action:
    """What to do when opening a stream was answered `status` (not 200):
    - `renew`: 401 with a token not yet renewed for this attempt: drop it and open again;
    - `retry`: 429 (after its Retry-After, `wait`) and 502/503/504 (after backoff): open again;
    - `raise`: anything else (bad filters, unknown task, a new token refused too, a
      Retry-After longer than `max_wait`)."""
    if status == 401:
        return "raise" if renewed else "renew"
    if (status == 429 or status in RETRYABLE_STATUSES) and (wait or 0) <= max_wait:
        return "retry"
    return "raise"
