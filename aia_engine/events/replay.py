"""Reading published events back from PostgreSQL, for streams that start or resume."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import TaskNotFound
from aia_engine.events.body import event_from_row, graph_event

_AFTER = """
    SELECT e.pos, e.task_id, e.seq, e.type, e.stage, e.payload, e.created_at,
           e.progress AS event_progress, t.progress, t.results, t.error
      FROM task_events e JOIN tasks t ON t.id = e.task_id
     WHERE e.pos > :after AND t.client_id = :client {task_filter}
     ORDER BY e.pos
     LIMIT :n
"""
_CLIENT = text(_AFTER.format(task_filter=""))
_TASK = text(_AFTER.format(task_filter="AND e.task_id = :task"))
# Task-less events owned by the client: its knowledge-graph changes (ix_task_events_client_pos).
_GRAPH = text(
    """
    SELECT e.pos, e.seq, e.type, e.payload, e.created_at
      FROM task_events e
     WHERE e.client_id = :client AND e.task_id IS NULL AND e.pos > :after
     ORDER BY e.pos
     LIMIT :n
    """
)


def events_after(
    sessions: Sessions,
    *,
    client_id: str,
    after: int,
    task_id: str | None = None,
    limit: int = 500,
) -> list[tuple[int, dict[str, Any]]]:
    """Published task events of the client (or of one of its tasks) with `pos > after`, in
    order. Never a graph change (those have no task): see `graph_events_after`."""
    params: dict[str, Any] = {"after": after, "client": client_id, "n": limit}
    if task_id is not None:
        params["task"] = task_id
    with sessions.begin() as session:
        rows = session.execute(_TASK if task_id else _CLIENT, params).all()
    return [(int(r.pos), event_from_row(r, int(r.pos))) for r in rows]


def graph_events_after(
    sessions: Sessions, *, client_id: str, after: int, limit: int = 500
) -> list[tuple[int, dict[str, Any]]]:
    """Published knowledge-graph changes of the client with `pos > after`, in order."""
    params = {"after": after, "client": client_id, "n": limit}
    with sessions.begin() as session:
        rows = session.execute(_GRAPH, params).all()
    return [
        (int(r.pos), graph_event(pos=int(r.pos), event_type=r.type, seq=r.seq,
                                 created_at=r.created_at, payload=r.payload or {}))
        for r in rows
    ]  # fmt: skip


def stream_head(sessions: Sessions) -> int:
    """The position of the last published event (0 when none): where a stream that starts
    "now" begins. Published positions commit in order (one pump), so every event committed
    after this read has a higher position and reaches the stream."""
    with sessions.begin() as session:
        head = session.scalar(text("SELECT max(pos) FROM task_events WHERE pos IS NOT NULL"))
    return int(head or 0)


def check_task(sessions: Sessions, task_id: str, *, client_id: str) -> str:
    """The task's status, or `TaskNotFound` if it is not the client's."""
    with sessions.begin() as session:
        status = session.scalar(
            select(Task.status).where(Task.id == task_id, Task.client_id == client_id)
        )
    if status is None:
        raise TaskNotFound(task_id)
    return str(status)
