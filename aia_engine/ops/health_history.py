"""The engine's health history: one sample a minute, written by the beat process.

A sample runs the same checks as `GET /health` (PostgreSQL, Redis, a worker answering a ping)
and records whether all passed, with each service's result. The dashboard's system_uptime is
the share of healthy samples over its window. The beat process is the one process an
installation runs exactly once, so there is one sample a minute however many API processes
run; a beat that is down records nothing (its absence is not counted as downtime: there is no
evidence either way). A sample that cannot be written (PostgreSQL down: the sample itself then
says the database is unhealthy) is kept in memory, up to a day of them (BUFFER_S), and written
with the next sample that can be: an outage of the database shows as unhealthy minutes instead
of a gap. Samples and per-client request figures older than AIA_BI_HISTORY_KEEP_DAYS are pruned
by the same loop.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
BUFFER_S = 86_400
"""Unwritten samples kept in memory at most (the oldest are dropped past a day of them)."""


@dataclass(frozen=True)
class Sample:
    at: datetime
    healthy: bool
    services: dict[str, str]


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


def make_sample(results: Mapping[str, str], *, at: datetime) -> Sample:
    return Sample(at, all(r == HEALTHY for r in results.values()), dict(results))


def record_samples(sessions: Sessions, samples: Sequence[Sample]) -> None:
    rows = [{"at": s.at, "healthy": s.healthy, "services": json.dumps(s.services)} for s in samples]
    with sessions.begin() as session:
        session.execute(_INSERT, rows)


def record_sample(sessions: Sessions, results: Mapping[str, str], *, at: datetime) -> bool:
    sample = make_sample(results, at=at)
    record_samples(sessions, [sample])
    return sample.healthy


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
        self.unwritten: deque[Sample] = deque(maxlen=max(1, math.ceil(BUFFER_S / interval_s)))
        """Samples not written yet (the database was unreachable), oldest first."""

    def sample(self) -> bool:
        """Run the checks and write the sample, with any earlier ones not written yet; when the
        write fails they all stay in memory for the next time. Returns the sample's health."""
        now = self.clock()
        sample = make_sample(run_checks(self.checks), at=now)
        self.unwritten.append(sample)
        try:
            record_samples(self.sessions, list(self.unwritten))
        except Exception:
            log.warning(
                "could not write %d health sample(s); kept for the next write",
                len(self.unwritten),
                exc_info=True,
            )
            return sample.healthy
        self.unwritten.clear()
        if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
            prune(self.sessions, keep_days=self.keep_days, now=now)
            self._last_prune = now
        return sample.healthy

    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("could not record a health sample; trying again next interval")
            if stop.wait(self.interval_s):
                return
