"""Serving a client's dashboard: check the month, then the cache (cache.py) or a computation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aia_engine.bi.cache import DashboardCache
from aia_engine.bi.dashboard import compute_dashboard, parse_month
from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions


def serve_dashboard(
    cache: DashboardCache | None,
    sessions: Sessions,
    client_id: str,
    *,
    month: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dashboard for `client_id`: a malformed or future `month` is refused before the cache
    is read; without a cache (no Redis configured) it is computed."""
    if month is not None:
        parse_month(month, today=(now or utcnow()).astimezone(UTC).date())

    def compute() -> dict[str, Any]:
        return compute_dashboard(sessions, client_id, month=month, now=now)

    if cache is None:
        body = compute()
        return {**body, "details": {**body["details"], "cache": {
            "hit": False, "age_s": 0.0, "state": "uncached", "refreshing": False}}}  # fmt: skip
    return cache.get(client_id, month, compute)
