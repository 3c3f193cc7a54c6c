"""The engine's health history: one sample a minute, written by the beat process.

A sample runs the same checks as `GET /health` (PostgreSQL, Redis, a worker answering a ping)
and records whether all passed, with each service's result. The dashboard's system_uptime is
the share of healthy samples over its window. The beat process is the one process an
installation runs exactly once, so there is one sample a minute however many API processes
run; a beat that is down records nothing (its absence is not counted as downtime: there is no
evidence either way). Samples and per-client request figures older than
AIA_BI_HISTORY_KEEP_DAYS are pruned by the same loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import redis
from sqlalchemy import text

from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.metrics.client_requests import prune as prune_request_stats
from aia_engine.ops.health import HEALTHY, Check

log = logging.getLogger("aia_engine.health")
_INSERT = text(
    "INSERT INTO health_samples (sampled_at, healthy, services) "
    "VALUES (:at, :healthy, CAST(:services AS jsonb)) ON CONFLICT (sampled_at) DO NOTHING"
)
_PRUNE = text("DELETE FROM health_samples WHERE sampled_at < :before")


def engine_checks(
    sessions: Sessions, client: redis.Redis, count_workers: Callable[[], int]
) -> dict[str, Check]:
    """What `GET /health` checks: PostgreSQL answers, Redis answers, a stage worker answers."""

    def database() -> str:
        with sessions.begin() as session:
            session.execute(text("SELECT 1"))
        return HEALTHY

    def redis_ping() -> str:
        client.ping()
        return HEALTHY

    def workers() -> str:
        return HEALTHY if count_workers() > 0 else "unhealthy: no worker answered"

    return {"database": database, "redis": redis_ping, "workers": workers}


def run_checks(checks: Mapping[str, Check]) -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as exc:
            results[name] = f"unhealthy: {type(exc).__name__}"
    return results


def record_sample(sessions: Sessions, results: Mapping[str, str], *, at: datetime) -> bool:
    healthy = all(r == HEALTHY for r in results.values())
    with sessions.begin() as session:
        session.execute(
            _INSERT,
            {"at": at, "healthy": healthy, "services": json.dumps(dict(results))},
        )
    return healthy


def prune(sessions: Sessions, *, keep_days: int, now: datetime) -> None:
    with sessions.begin() as session:
        session.execute(_PRUNE, {"before": now - timedelta(days=keep_days)})
    prune_request_stats(sessions, keep_days=keep_days, now=now)


class HealthSampler:
    def __init__(
        self,
        sessions: Sessions,
        checks: Mapping[str, Check],
        *,
        interval_s: float,
        keep_days: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions, self.checks = sessions, dict(checks)
        self.interval_s, self.keep_days, self.clock = interval_s, keep_days, clock
        self._last_prune: datetime | None = None

    def sample(self) -> bool:
        now = self.clock()
        healthy = record_sample(self.sessions, run_checks(self.checks), at=now)
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            prune(self.sessions, keep_days=self.keep_days, now=now)
            self._last_prune = now
        return healthy

    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("could not record a health sample; trying again next interval")
            if stop.wait(self.interval_s):
                return
