"""The dashboard of the client owning a task, for the stages of an optimization cycle."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aia_engine.bi.dashboard import compute_dashboard
from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import AgentError


def dashboard_for_task(sessions: Sessions, month: str | None, *, task_id: str) -> dict[str, Any]:
    """`compute_dashboard` for the client of `task_id` (read from its row: a stage's params
    cannot name another client)."""
    with sessions.begin() as session:
        client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
    if client_id is None:
        raise AgentError(f"task {task_id!r} has no client", task_id=task_id)
    return compute_dashboard(sessions, client_id, month=month)
