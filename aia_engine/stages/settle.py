"""Deciding a task's progress and, once every stage has ended, its final status.

Called with the task row locked. This is where failures are settled: in the engine, from the
stage rows, never through Celery error callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aia_engine.db.models import TERMINAL_STAGE, StageRun, StageStatus, Task, TaskStatus
from aia_engine.errors import StageLost, StageSkipped
from aia_engine.tasks.events import append_event
from workflows.spec import spec_from_dict


def task_progress(stages: Mapping[str, StageRun]) -> float:
    if not stages:
        return 0.0
    done = sum(
        1.0
        if row.status in TERMINAL_STAGE
        else row.progress / 100.0
        if row.status == StageStatus.RUNNING
        else 0.0
        for row in stages.values()
    )
    return round(100.0 * done / len(stages), 1)


def merged_partials(stages: Mapping[str, StageRun]) -> dict[str, Any]:
    """The guide's flat `partial_results`: the latest partials of each stage, in stage order."""
    merged: dict[str, Any] = {}
    for row in stages.values():
        if row.partial_results:
            merged.update(row.partial_results)
    return merged


def skip_unreachable(
    session: Session, task: Task, stages: Mapping[str, StageRun], failed: str, *, now: datetime
) -> list[str]:
    """Mark every pending stage downstream of `failed` skipped; they can no longer run."""
    spec = spec_from_dict(task.workflow)
    skipped = []
    for name in spec.topological_order():
        if name in spec.descendants(failed) and stages[name].status == StageStatus.PENDING:
            row = stages[name]
            row.status = StageStatus.SKIPPED
            row.finished_at = row.updated_at = now
            row.error = {
                "code": StageSkipped.code,
                "type": "StageSkipped",
                "message": f"skipped: upstream stage {failed!r} failed",
            }
            task.progress = task_progress(stages)  # what the event records
            append_event(
                session, task, "stage.skipped", now=now, stage=name, payload={"because": failed}
            )
            skipped.append(name)
    return skipped


def fail_stage(
    session: Session,
    task: Task,
    stages: Mapping[str, StageRun],
    name: str,
    error: dict[str, Any],
    *,
    now: datetime,
) -> None:
    """End stage `name` failed with `error` (one it never recorded itself, e.g. lost), skip what
    can no longer run, and settle the task if that was the last open stage."""
    row = stages[name]
    row.status = StageStatus.FAILED
    row.error = error
    row.finished_at = row.updated_at = now
    row.lease_until = None
    task.progress = task_progress(stages)  # what the event records
    append_event(
        session,
        task,
        "stage.failed",
        now=now,
        stage=name,
        payload={"attempt": row.attempt, "error": error},
    )
    if spec_from_dict(task.workflow).stages[name].on_failure == "fail_workflow":
        skip_unreachable(session, task, stages, name, now=now)
    settle_if_done(session, task, stages, now=now)


def lost_error(name: str, row: StageRun, cap: int) -> dict[str, Any]:
    return StageLost(
        f"stage {name!r} was lost: {row.redispatches + 1} of its runs ended without recording "
        f"an outcome (its worker process died or its lease ran out), and at most {cap} more "
        "runs are made after a loss (AIA_MAX_STAGE_REDISPATCHES). Fix what kills the stage "
        "(often an agent crashing its process or overrunning its time limit), then retry the task",
        stage=name,
        runs_lost=row.redispatches + 1,
        limit=cap,
    ).to_dict()


def settle_if_done(
    session: Session, task: Task, stages: Mapping[str, StageRun], *, now: datetime
) -> bool:
    """Finish the task when all its stages have ended; True when it did."""
    task.progress = task_progress(stages)
    if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        return False
    if any(row.status not in TERMINAL_STAGE for row in stages.values()):
        return False
    spec = spec_from_dict(task.workflow)
    fatal = [
        name
        for name, row in stages.items()
        if row.status == StageStatus.FAILED and spec.stages[name].on_failure == "fail_workflow"
    ]
    task.finished_at = now
    task.results = {
        name: row.output for name, row in stages.items() if row.status == StageStatus.COMPLETED
    }
    if fatal:
        first = stages[fatal[0]]
        task.status = TaskStatus.FAILED
        task.error = {
            **(first.error or {}),
            "stage": first.name,
            "failed_stages": fatal,
            "skipped_stages": [n for n, r in stages.items() if r.status == StageStatus.SKIPPED],
        }
        append_event(session, task, "task.failed", now=now, payload={"error": task.error})
    else:
        task.status = TaskStatus.COMPLETED
        task.progress = 100.0
        task.error = None
        append_event(
            session,
            task,
            "task.completed",
            now=now,
            payload={
                "failed_stages": [n for n, r in stages.items() if r.status == StageStatus.FAILED]
            },
        )
    return True
