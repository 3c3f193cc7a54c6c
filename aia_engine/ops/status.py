"""The backlog half of `aia-engine status`: messages waiting per priority, tasks by status, the
oldest task still waiting, and the outbox. Read from PostgreSQL and Redis only: the live workers
are Celery's to report (`cli/status.py`), so the core needs no Celery for this."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select

from aia_engine.db.models import OutboxMessage, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.metrics.prometheus import queue_depths
from workflows.compiler import PRIORITY_QUEUES

WAITING = (TaskStatus.ACCEPTED, TaskStatus.QUEUED)


def backlog(sessions: Sessions, client: redis.Redis, *, now: datetime) -> dict[str, Any]:
    depths = queue_depths(client)
    with sessions.begin() as session:
        counts = dict(
            session.execute(select(Task.status, func.count()).group_by(Task.status)).all()
        )
        oldest = session.execute(
            select(Task.id, Task.priority, Task.status, Task.created_at)
            .where(Task.status.in_(WAITING))
            .order_by(Task.created_at, Task.id)
            .limit(1)
        ).first()
        unpublished = session.scalar(
            select(func.count()).where(OutboxMessage.published_at.is_(None))
        )
    return {
        "queues": {p: depths.get(q, 0) for p, q in PRIORITY_QUEUES.items()}
        | {"webhooks": depths.get("aia.webhooks", 0)},
        "tasks": {s.value: int(counts.get(s.value, 0)) for s in TaskStatus},
        "oldest_waiting": None
        if oldest is None
        else {
            "task_id": oldest.id,
            "priority": oldest.priority,
            "status": oldest.status,
            "created_at": oldest.created_at.isoformat(),
            "waiting_s": round((now - oldest.created_at).total_seconds(), 1),
        },
        "outbox_unpublished": int(unpublished or 0),
    }
