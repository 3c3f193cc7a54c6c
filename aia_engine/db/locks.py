"""Locking a task's rows, and reading its stages, the way every writer of them does.

Every writer of a task's rows (the stage lifecycle, cancel and retry, the reconciler, the
publisher) first locks the task row with `lock_task`: that lock orders the writers of one task,
so its event sequence has no gaps and stage updates never interleave. The same order (task row,
then its stages) is taken by the stage functions in `aia_engine/stages/sql`.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from aia_engine.db.models import StageRun, Task


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
