"""User activity: what clients report (`POST /monitoring/track-user-activity`) plus the API's
own log of requests that name a user (`X-User-ID`), and analytics over both, per client.

Analytics (all in PostgreSQL, over the period): a request failed when its status code is 400
or more and succeeded when below; an activity reported without a status code is neither, and
`error_rate` (failed over those with a status code) is null when none had one; response-time
percentiles interpolate linearly (`percentile_cont`); peak hours are the five busiest UTC hours,
listed in order of the clock; preferred endpoints are the five most used with their share of
the requests that named an endpoint.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, text

from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidRequest

PERIODS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


MAX_RESPONSE_TIME_MS = 86_400_000
"""One day: a longer wait is not a response time, and sums of such figures stay exact."""
MAX_BYTES = 2**53 - 1
"""9 PB; the largest integer every JSON client (JavaScript's numbers) holds exactly."""


class ActivityDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    endpoint: str | None = Field(default=None, max_length=512)
    response_time: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RESPONSE_TIME_MS,
        allow_inf_nan=False,
        description="Milliseconds, from 0 to 86,400,000 (one day).",
    )
    status_code: int | None = Field(
        default=None, ge=100, le=599, description="An HTTP status code, 100 to 599."
    )
    user_agent: str | None = Field(default=None, max_length=512)
    bytes_transferred: int | None = Field(
        default=None,
        ge=0,
        le=MAX_BYTES,
        description="Bytes, from 0 to 9,007,199,254,740,991 (2^53 - 1).",
    )


class ActivityIn(BaseModel):
    """The guide's body."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    session_id: str | None = Field(default=None, max_length=128)
    activity_type: str = Field(min_length=1, max_length=64)
    timestamp: datetime | None = None
    details: ActivityDetails = Field(default_factory=ActivityDetails)
    context: dict[str, Any] = Field(default_factory=dict)


def track(sessions: Sessions, body: ActivityIn, *, client_id: str) -> dict[str, Any]:
    now = utcnow()
    when = body.timestamp or now
    if when.tzinfo is None:
        raise InvalidRequest(
            "timestamp needs a time zone (e.g. 2025-10-03T10:00:00Z)", field="timestamp"
        )
    if when > now + timedelta(minutes=5):
        raise InvalidRequest(
            "timestamp is in the future", field="timestamp", provided_value=when.isoformat()
        )
    d = body.details
    with sessions.begin() as session:
        activity_id = session.execute(
            text(
                "INSERT INTO user_activity (client_id, user_id, session_id, activity_type, source,"
                " endpoint, status_code, response_time_ms, bytes, occurred_at, details, context)"
                " VALUES (:c, :u, :s, :t, 'tracked', :e, :code, :ms, :b, :at,"
                " CAST(:details AS jsonb), CAST(:context AS jsonb)) RETURNING id"
            ),
            {
                "c": client_id, "u": body.user_id, "s": body.session_id, "t": body.activity_type,
                "e": d.endpoint, "code": d.status_code, "ms": d.response_time,
                "b": d.bytes_transferred or 0, "at": when,
                "details": d.model_dump_json(exclude_none=True), "context": _json(body.context),
            },
        ).scalar_one()  # fmt: skip
    return {"status": "recorded", "activity_id": f"act_{activity_id}", "user_id": body.user_id}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


class RequestLog:
    """API requests that name a user, buffered in memory and written once a second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []

    def record(self, **row: Any) -> None:
        with self._lock:
            if len(self._rows) < 100_000:  # if the database is away for long, drop, never grow
                self._rows.append(row)

    def flush(self, sessions: Sessions) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        from aia_engine.db.models import UserActivity

        try:
            with sessions.begin() as session:
                session.execute(insert(UserActivity), rows)
        except Exception:
            with self._lock:
                self._rows[:0] = rows[: 100_000 - len(self._rows)]
            raise


# Safe over any stored row, whatever wrote it: response times that are not finite (NaN, which
# PostgreSQL sorts above Infinity, and the infinities) are not measurements and are left out;
# the mean is taken in numeric, whose sum cannot overflow; percentiles interpolate over
# quarter values, so the difference of two doubles cannot overflow, and are scaled back
# (exact: a power of two). Byte counts are bigint, whose sum is numeric.
_SUMMARY = text(
    """
    WITH rows AS (
      SELECT status_code, bytes,
             CASE WHEN response_time_ms > '-Infinity'::float8
                   AND response_time_ms < 'Infinity'::float8 THEN response_time_ms END AS ms
        FROM user_activity
       WHERE client_id = :c AND user_id = :u AND occurred_at > :since AND occurred_at <= :now
    )
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status_code >= 400) AS failed,
           count(*) FILTER (WHERE status_code < 400) AS succeeded,
           avg(ms::numeric) AS avg_ms,
           coalesce(sum(bytes), 0) AS bytes,
           4 * percentile_cont(0.5) WITHIN GROUP (ORDER BY ms / 4) AS p50,
           4 * percentile_cont(0.95) WITHIN GROUP (ORDER BY ms / 4) AS p95,
           4 * percentile_cont(0.99) WITHIN GROUP (ORDER BY ms / 4) AS p99
      FROM rows
    """
)
_ENDPOINTS = text(
    """
    SELECT endpoint, count(*) AS n FROM user_activity
     WHERE client_id = :c AND user_id = :u AND occurred_at > :since AND occurred_at <= :now
       AND endpoint IS NOT NULL
     GROUP BY endpoint ORDER BY n DESC, endpoint LIMIT 5
    """
)
_NAMED = text(
    """
    SELECT count(*) FROM user_activity
     WHERE client_id = :c AND user_id = :u AND occurred_at > :since AND occurred_at <= :now
       AND endpoint IS NOT NULL
    """
)
_HOURS = text(
    """
    SELECT extract(hour FROM occurred_at AT TIME ZONE 'UTC')::int AS h, count(*) AS n
      FROM user_activity
     WHERE client_id = :c AND user_id = :u AND occurred_at > :since AND occurred_at <= :now
     GROUP BY h ORDER BY n DESC, h LIMIT 5
    """
)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GB"


def analytics(
    sessions: Sessions, user_id: str, *, client_id: str, period: str, now: datetime | None = None
) -> dict[str, Any]:
    if period not in PERIODS:
        raise InvalidRequest(
            f"period must be one of {', '.join(PERIODS)}",
            field="period",
            provided_value=period[:20],
        )
    now = now or utcnow()
    params = {"c": client_id, "u": user_id, "since": now - PERIODS[period], "now": now}
    with sessions.begin() as session:
        s = session.execute(_SUMMARY, params).one()
        endpoints = session.execute(_ENDPOINTS, params).all()
        named = int(session.execute(_NAMED, params).scalar_one())
        hours = session.execute(_HOURS, params).all()
    total, failed, succeeded = int(s.total), int(s.failed), int(s.succeeded)

    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value), 1)

    return {
        "user_id": user_id,
        "analytics_period": period,
        "summary": {
            "total_requests": total,
            "successful_requests": succeeded,
            "failed_requests": failed,
            "average_response_time": ms(s.avg_ms),
            "data_transferred": human_bytes(int(s.bytes)),
            "data_transferred_bytes": int(s.bytes),
            "most_used_endpoints": [e.endpoint for e in endpoints[:3]],
        },
        "usage_patterns": {
            "peak_hours": sorted(int(h.h) for h in hours),
            "preferred_endpoints": {e.endpoint: round(e.n / named, 2) for e in endpoints},
        },
        "performance_metrics": {
            "p50_response_time": ms(s.p50),
            "p95_response_time": ms(s.p95),
            "p99_response_time": ms(s.p99),
            "error_rate": round(failed / (failed + succeeded), 3) if failed + succeeded else None,
        },
    }
