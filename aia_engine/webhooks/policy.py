"""What happens after a delivery attempt: retry when, give up, or disable the endpoint. Pure.

* 2xx: delivered. Redirects are never followed: a 3xx is a failure like any other.
* 410 Gone: the receiver says the endpoint is gone; it is disabled at once.
* 429 / 503 with `Retry-After` (seconds or an HTTP date): the next attempt waits that long
  (capped by `webhook_retry_after_max_s`).
* anything else (other statuses, timeouts, refused connections, unsafe addresses): exponential
  backoff from `webhook_backoff_base_s`, doubling up to `webhook_backoff_max_s`, with "equal
  jitter" (half the delay fixed, half random) so retries of many deliveries spread out.
* a delivery whose next attempt would fall beyond `webhook_retry_window_s` after its event is
  given up (status `failed`); it can still be redelivered by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from aia_engine.settings import Settings

Kind = Literal["delivered", "retry", "failed", "gone"]


@dataclass(frozen=True)
class Decision:
    kind: Kind
    next_attempt_at: datetime | None = None


def backoff_s(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Delay after the `attempt`-th failed attempt (1-based), with equal jitter."""
    full: float = min(
        settings.webhook_backoff_max_s,
        settings.webhook_backoff_base_s * 2 ** min(attempt - 1, 40),
    )
    return full / 2 + float((rng or random).uniform(0, full / 2))


def retry_after_s(value: str | None, *, now: datetime) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() too, and float() refuses it
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def decide(
    *,
    status_code: int | None,
    retry_after: str | None,
    attempt: int,
    first_created_at: datetime,
    now: datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> Decision:
    if status_code is not None and 200 <= status_code < 300:
        return Decision("delivered")
    if status_code == 410:
        return Decision("gone")
    delay: float | None = None
    if status_code in (429, 503):
        asked = retry_after_s(retry_after, now=now)
        if asked is not None:
            delay = min(asked, settings.webhook_retry_after_max_s)
    if delay is None:
        delay = backoff_s(attempt, settings, rng)
    next_at = now + timedelta(seconds=delay)
    if next_at - first_created_at > timedelta(seconds=settings.webhook_retry_window_s):
        return Decision("failed")
    return Decision("retry", next_at)
