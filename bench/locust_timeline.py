"""Loaded beside the guide's locustfile (`-f bench/locustfile.py,bench/locust_timeline.py`):
records every request's start time, name and response time in AIA_LOCUST_TIMELINE (CSV), so
`bench_locust` can say when the slow ones happened. Adds no user and changes no request."""

from __future__ import annotations

import csv
import os
import time
from typing import Any

from locust import events

_rows: list[tuple[float, str, str, float, bool]] = []


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None,
    **_kwargs: Any,
) -> None:
    _rows.append(
        (time.time() - response_time / 1000, request_type, name, response_time, exception is None)
    )


@events.quitting.add_listener
def _write(**_kwargs: Any) -> None:
    with open(os.environ["AIA_LOCUST_TIMELINE"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["started", "method", "name", "response_time_ms", "ok"])
        writer.writerows(_rows)
