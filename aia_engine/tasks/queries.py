"""Reading tasks: one task in the guide's status shape, and filtered, cursor-paginated lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from aia_engine.clock import utcnow
from aia_engine.cursors import decode_cursor, encode_cursor
from aia_engine.db.locks import stage_rows
from aia_engine.db.models import TERMINAL_TASK, StageRun, StageStatus, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidRequest, TaskNotFound
from aia_engine.tasks.estimates import agent_durations, estimate_completion
from workflows.spec import spec_from_dict


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def get_task(sessions: Sessions, task_id: str, *, client_id: str = "local") -> dict[str, Any]:
    """The guide's status shape plus stages; `results` once completed, `error` once failed."""
    with sessions.begin() as session:
        task = session.scalars(
            select(Task).where(Task.id == task_id, Task.client_id == client_id)
        ).one_or_none()
        if task is None:
            raise TaskNotFound(task_id)
        stages = stage_rows(session, task_id)
        eta = _current_eta(session, task, stages)
        return render_task(task, stages, eta)


def render_task(task: Task, stages: dict[str, StageRun], eta: datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": task.id,
        "task_type": task.task_type,
        "description": task.description,
        "priority": task.priority,
        "status": task.status,
        "progress": task.progress,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "estimated_completion": iso(eta),
        "assigned_agents": list(task.assigned_agents),
        "partial_results": task.partial_results or {},
        "stages": [render_stage(row) for row in stages.values()],
    }
    if task.status == TaskStatus.COMPLETED:
        body["results"] = task.results
    if task.status == TaskStatus.FAILED:
        body["error"] = task.error
    return body


def render_stage(row: StageRun) -> dict[str, Any]:
    return {
        "name": row.name,
        "agent": row.agent,
        "status": row.status,
        "dependencies": list(row.dependencies),
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "progress": row.progress,
        "partial_results": row.partial_results,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "error": row.error,
        "output": row.output,
    }


def _current_eta(session: Session, task: Task, stages: dict[str, StageRun]) -> datetime | None:
    if task.status in TERMINAL_TASK:
        return task.finished_at
    now = utcnow()
    elapsed: dict[str, float] = {}
    for name, row in stages.items():
        if row.status == StageStatus.RUNNING and row.started_at:
            elapsed[name] = (now - row.started_at).total_seconds()
        elif row.status != StageStatus.PENDING:
            elapsed[name] = float("inf")
    return estimate_completion(
        spec_from_dict(task.workflow), agent_durations(session, now=now), start=now, elapsed=elapsed
    )


def list_tasks(
    sessions: Sessions,
    *,
    client_id: str = "local",
    status: str | None = None,
    task_type: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_after: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; `next_cursor` continues where the page ended."""
    if status is not None and status not in {s.value for s in TaskStatus}:
        raise InvalidRequest(f"unknown status {status!r}", field="status", provided_value=status)
    limit = max(1, min(limit, 200))
    stmt = select(Task).where(Task.client_id == client_id)
    if status:
        stmt = stmt.where(Task.status == status)
    if task_type:
        stmt = stmt.where(Task.task_type == task_type)
    if created_after:
        stmt = stmt.where(Task.created_at >= created_after)
    if created_before:
        stmt = stmt.where(Task.created_at < created_before)
    if updated_after:  # what changed since a poll (`aia-engine batch submit --wait`)
        stmt = stmt.where(Task.updated_at >= updated_after)
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Task.created_at < at, and_(Task.created_at == at, Task.id < last_id)))
    stmt = stmt.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit + 1)
    with sessions.begin() as session:
        rows = list(session.scalars(stmt))
    page = rows[:limit]
    items = [
        {
            "task_id": t.id,
            "task_type": t.task_type,
            "status": t.status,
            "progress": t.progress,
            "priority": t.priority,
            "created_at": iso(t.created_at),
            "updated_at": iso(t.updated_at),
            "assigned_agents": list(t.assigned_agents),
            "tracking_url": f"/tasks/{t.id}",
        }
        for t in page
    ]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return {"tasks": items, "count": len(items), "next_cursor": next_cursor}


def _encode_cursor(task: Task) -> str:
    return encode_cursor(task.created_at, task.id)
