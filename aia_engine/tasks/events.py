"""The append-only `task_events` log: one row per state change, numbered per task.

Every writer of a task's rows holds the task row lock (taken by `aia_engine.db.locks.lock_task`),
so the per-task sequence has no gaps or duplicates and stage updates of one task never interleave.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from aia_engine.db.models import Task, TaskEvent


def append_event(
    session: Session,
    task: Task,
    event_type: str,
    *,
    now: datetime,
    stage: str | None = None,
    payload: dict[str, Any] | None = None,
) -> TaskEvent:
    """Record one state change of `task` (whose row the caller has locked).

    The event keeps the task's progress as it is now: the caller updates `task.progress` for
    the change first, so the event says what `GET /tasks/{id}` says once it commits.
    """
    task.event_seq += 1
    task.updated_at = now
    event = TaskEvent(
        task_id=task.id,
        seq=task.event_seq,
        type=event_type,
        stage=stage,
        payload=payload or {},
        created_at=now,
        progress=task.progress or 0.0,
    )
    session.add(event)
    return event


def bump_sequence(session: Session, task_id: str, now: datetime) -> int:
    """Next event number of a task whose row is not loaded (one UPDATE ... RETURNING)."""
    stmt = (
        update(Task)
        .where(Task.id == task_id)
        .values(event_seq=Task.event_seq + 1, updated_at=now)
        .returning(Task.event_seq)
    )
    return int(session.execute(stmt).scalar_one())
