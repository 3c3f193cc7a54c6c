"""Persisting `ctx.progress` calls of a running stage, throttled."""

from __future__ import annotations

import time
from typing import Any

from aia_engine.clock import utcnow
from aia_engine.db.locks import lock_task_with_stages
from aia_engine.db.models import StageStatus
from aia_engine.db.session import Sessions
from aia_engine.stages.settle import merged_partials, task_progress
from aia_engine.tasks.events import append_event


class ProgressReporter:
    """Persists `ctx.progress` calls, at most one every `every_s` seconds (and always at 100 %)."""

    def __init__(
        self, sessions: Sessions, *, task_id: str, stage: str, celery_id: str, every_s: float
    ) -> None:
        self.sessions = sessions
        self.task_id = task_id
        self.stage = stage
        self.celery_id = celery_id
        self.every_s = every_s
        self.last = float("-inf")

    def __call__(self, percent: float, partial: Any) -> None:
        if percent < 100.0 and time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        now = utcnow()
        with self.sessions.begin() as session:
            task, stages = lock_task_with_stages(session, self.task_id)
            if task is None:
                return
            row = stages[self.stage]
            if row.status != StageStatus.RUNNING or row.celery_id != self.celery_id:
                return
            row.progress = percent
            if partial is not None:
                row.partial_results = dict(partial)
            row.updated_at = now
            task.progress = task_progress(stages)
            task.partial_results = merged_partials(stages)
            append_event(
                session,
                task,
                "task.progress",
                now=now,
                stage=self.stage,
                payload={"stage_progress": percent, "progress": task.progress},
            )
