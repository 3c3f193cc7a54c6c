"""The append-only `task_events` log: one row per state change, numbered per task.

Every writer of a task's rows holds the task row lock (taken by `lock_task`), so the per-task
sequence has no gaps or duplicates and stage updates of one task never interleave.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from aia_engine.db.models import StageRun, Task, TaskEvent


def relax_commit(session: Session) -> None:
    """Let this transaction's COMMIT return before its WAL reaches disk.

    Only for writes whose loss in a database crash the engine repairs by itself: a lost
    "published" mark makes the relay publish again (and write its `task.queued` event again,
    under the same sequence number). The stage
    lifecycle does not use this: its commits follow AIA_WORKER_SYNCHRONOUS_COMMIT (durable by
    default). Accepting a task never uses this: "accepted" is durable.
    """
    if not session.info.get("relaxed"):  # connections set to `off` have it already
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def lock_task(session: Session, task_id: str, *, skip_locked: bool = False) -> Task | None:
    stmt = select(Task).where(Task.id == task_id).with_for_update(skip_locked=skip_locked)
    return session.scalars(stmt).one_or_none()


def lock_task_with_stages(
    session: Session, task_id: str
) -> tuple[Task | None, dict[str, StageRun]]:
    """Lock the task row, then read its stages.

    Two statements on purpose: under READ COMMITTED a statement that waited for the lock sees
    other rows as of its own start, so reading the stages in the locking statement (a join)
    could miss a stage that the previous lock holder just finished, and no one would settle
    the task. The second statement takes a fresh snapshot after the lock is ours.
    """
    task = lock_task(session, task_id)
    if task is None:
        return None, {}
    return task, stage_rows(session, task_id)


def stage_rows(session: Session, task_id: str) -> dict[str, StageRun]:
    rows = session.scalars(
        select(StageRun).where(StageRun.task_id == task_id).order_by(StageRun.position)
    )
    return {row.name: row for row in rows}


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
