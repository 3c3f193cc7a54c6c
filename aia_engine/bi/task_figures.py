"""The figures of an optimization cycle come from ONE dashboard computation:

- at submission the cycle's reference month is pinned (`pin_month`: the month the dashboard
  shows by default, that of the latest purchase up to today, else the current month) and stored
  in the cycle's request (`bi_cycles.request.month`, `requirements.cycle.month`);
- every analysis stage reads the dashboard of that month through the dashboard cache
  (`aia_engine.bi.cache.DashboardCache` via `serving.serve_dashboard`): the same Redis entry GET
  /business-intelligence/dashboard?month=<month> serves, computed once on a miss (concurrent
  stages, in any worker process, wait for the one computation) and reused while fresh or stale.

The client is read from the task's row: a stage's params cannot name another client.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text

from aia_engine.bi import business
from aia_engine.bi.cache import DashboardCache
from aia_engine.bi.dashboard import STATEMENT_TIMEOUT_S, month_key
from aia_engine.bi.serving import serve_dashboard
from aia_engine.clock import utcnow
from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import AgentError
from aia_engine.redis.connect import sync_client
from aia_engine.settings import Settings

# The latest day of a purchase the dashboard counts (amount and date both readable), parsed
# exactly as the dashboard's scan parses it (business._PURCHASES), without its aggregates.
_LATEST_DAY = text(
    f"SELECT max(day) FILTER (WHERE amount IS NOT NULL) FROM ({business._PURCHASES}) p"
)

_caches: dict[str, DashboardCache] = {}
_caches_lock = threading.Lock()


def pin_month(sessions: Sessions, client_id: str, *, now: datetime | None = None) -> str:
    """The month (YYYY-MM) the client's dashboard shows by default: that of its latest purchase
    (at most today), else the current month."""
    today = (now or utcnow()).astimezone(UTC).date()
    with sessions() as session:
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_S * 1000}"))
        latest = session.scalar(_LATEST_DAY, {"c": client_id})
    return month_key(min(latest, today) if latest is not None else today)


def dashboard_cache(settings: Settings) -> DashboardCache | None:
    """This process's dashboard cache (one per Redis URL, made on first use, so after a
    worker's fork); None without Redis (then each read computes)."""
    if not settings.redis_url:
        return None
    with _caches_lock:
        cache = _caches.get(settings.redis_url)
        if cache is None:
            cache = _caches[settings.redis_url] = DashboardCache(
                sync_client(settings.redis_url, connect_timeout=1, timeout=5),
                ttl_s=settings.bi_dashboard_ttl_s,
                stale_s=settings.bi_dashboard_stale_s,
                wait_s=settings.bi_dashboard_wait_s,
                background=settings.bi_dashboard_concurrency,
            )
        return cache


def dashboard_for_task(
    sessions: Sessions, settings: Settings, month: str | None, *, task_id: str
) -> dict[str, Any]:
    """The dashboard of `month` for the client of `task_id` (read from its row), through the
    dashboard cache."""
    with sessions.begin() as session:
        client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
    if client_id is None:
        raise AgentError(f"task {task_id!r} has no client", task_id=task_id)
    return serve_dashboard(dashboard_cache(settings), sessions, client_id, month=month)
