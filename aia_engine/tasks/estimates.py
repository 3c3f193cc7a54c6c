"""Duration estimates: recorded stage durations per agent, along the workflow's critical path."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from aia_engine.db.models import StageRun, StageStatus
from aia_engine.db.session import Sessions
from workflows.plan import critical_path
from workflows.spec import WorkflowSpec

DEFAULT_STAGE_SECONDS = 5.0
_CACHE_TTL_S = 60.0
_lock = threading.Lock()
_cache: tuple[float, dict[str, float]] | None = None


def agent_durations(source: Session | Connection | Sessions, *, now: datetime) -> dict[str, float]:
    """Mean seconds of completed stages per agent over the last day (cached a minute).

    `source` may be a session factory: a connection is then taken only when the cache is old.
    """
    global _cache
    with _lock:
        if _cache is not None and time.monotonic() - _cache[0] < _CACHE_TTL_S:
            return _cache[1]
    if isinstance(source, sessionmaker):
        with source() as session:
            return agent_durations(session, now=now)
    seconds = func.avg(func.extract("epoch", StageRun.finished_at - StageRun.started_at))
    rows = source.execute(
        select(StageRun.agent, seconds)
        .where(
            StageRun.status == StageStatus.COMPLETED, StageRun.finished_at > now - timedelta(days=1)
        )
        .group_by(StageRun.agent)
    ).all()
    durations = {agent: float(avg) for agent, avg in rows if avg is not None}
    with _lock:
        _cache = (time.monotonic(), durations)
    return durations


def stage_weights(spec: WorkflowSpec, durations: Mapping[str, float]) -> dict[str, float]:
    return {
        name: durations.get(stage.agent, DEFAULT_STAGE_SECONDS)
        for name, stage in spec.stages.items()
    }


def estimate_completion(
    spec: WorkflowSpec,
    durations: Mapping[str, float],
    *,
    start: datetime,
    elapsed: Mapping[str, float] | None = None,
) -> datetime:
    """When the workflow should end: `start` plus the weighted critical path.

    `elapsed` gives, for stages already done or running, how many of their seconds are spent,
    so the estimate shrinks as the workflow advances.
    """
    weights = stage_weights(spec, durations)
    for name, spent in (elapsed or {}).items():
        weights[name] = max(0.0, weights[name] - spent)
    return start + timedelta(seconds=critical_path(spec, weights))
