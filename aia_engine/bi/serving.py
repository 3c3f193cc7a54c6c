"""Serving a client's dashboard: check the month, then the cache (cache.py) or a computation.

The API calls the steps separately (api/routes/business_intelligence.py): `check_month` and
`cached` on its shared thread pool (fast: one Redis read), `computed` only on a miss and under
the dashboards' own concurrency limit, and `busy` for a request that waited too long for it.
`serve_dashboard` chains them for callers without an event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aia_engine.bi.cache import Compute, DashboardCache
from aia_engine.bi.dashboard import compute_dashboard, parse_month
from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.errors import TransientError


def check_month(month: str | None, *, now: datetime | None = None) -> None:
    """A malformed or future `month` is refused (E068) before the cache is read."""
    if month is not None:
        parse_month(month, today=(now or utcnow()).astimezone(UTC).date())


def _compute(
    sessions: Sessions, client_id: str, month: str | None, now: datetime | None
) -> Compute:
    def compute() -> dict[str, Any]:
        return compute_dashboard(sessions, client_id, month=month, now=now)

    return compute


def cached(
    cache: DashboardCache | None,
    sessions: Sessions,
    client_id: str,
    *,
    month: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """The cached answer (fresh, or stale while one background recompute runs), else None."""
    if cache is None:
        return None
    return cache.lookup(client_id, month, _compute(sessions, client_id, month, now))


def computed(
    cache: DashboardCache | None,
    sessions: Sessions,
    client_id: str,
    *,
    month: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A miss: computed once however many ask at once; without a cache, computed."""
    compute = _compute(sessions, client_id, month, now)
    if cache is None:
        body = compute()
        return {**body, "details": {**body["details"], "cache": {
            "hit": False, "age_s": 0.0, "state": "uncached", "refreshing": False}}}  # fmt: skip
    return cache.fill(client_id, month, compute)


def busy(
    cache: DashboardCache | None, client_id: str, *, month: str | None = None
) -> dict[str, Any]:
    """No computation slot in time: the cached entry at any age, else TransientError (503)."""
    if cache is None:
        raise TransientError(
            "every dashboard computation slot is busy; retry in a few seconds",
            reason="dashboard_busy",
        ).with_headers({"Retry-After": "5"})
    return cache.fallback(client_id, month)


def serve_dashboard(
    cache: DashboardCache | None,
    sessions: Sessions,
    client_id: str,
    *,
    month: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dashboard for `client_id`: checked, then cached, else computed."""
    check_month(month, now=now)
    answer = cached(cache, sessions, client_id, month=month, now=now)
    if answer is not None:
        return answer
    return computed(cache, sessions, client_id, month=month, now=now)
