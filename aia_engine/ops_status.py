"""`aia-engine status` without a task id: what an operator checks first.

Workers alive (with their queues, concurrency and running stages), messages waiting per
priority, tasks by status, the oldest task still waiting, and the outbox backlog.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from celery import Celery
from sqlalchemy import func, select

from aia_engine.db.models import OutboxMessage, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.metrics.prometheus import queue_depths
from workflows.compiler import PRIORITY_QUEUES, STAGE_QUEUES

WAITING = (TaskStatus.ACCEPTED, TaskStatus.QUEUED)


def system_status(
    sessions: Sessions, client: redis.Redis, app: Celery, *, now: datetime, timeout_s: float
) -> dict[str, Any]:
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
    workers = _workers(app, timeout_s)
    return {
        "workers": workers,
        "stage_workers": sum(1 for w in workers if set(w["queues"]) & set(STAGE_QUEUES)),
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


def _workers(app: Celery, timeout_s: float) -> list[dict[str, Any]]:
    inspect = app.control.inspect(timeout=timeout_s)
    queues: dict[str, Any] = inspect.active_queues() or {}
    stats: dict[str, Any] = inspect.stats() or {}
    active: dict[str, Any] = inspect.active() or {}
    workers = []
    for name in sorted(set(queues) | set(stats)):
        pool = (stats.get(name) or {}).get("pool") or {}
        workers.append(
            {
                "name": name,
                "queues": [q["name"] for q in queues.get(name) or []],
                "concurrency": pool.get("max-concurrency"),
                "running": len(active.get(name) or []),
                "processed": sum(((stats.get(name) or {}).get("total") or {}).values()),
            }
        )
    return workers


def render(status: dict[str, Any]) -> str:
    workers = status["workers"]
    lines = [f"workers: {len(workers)} alive ({status['stage_workers']} taking stages)"]
    for w in workers:
        lines.append(
            f"  {w['name']:<40} queues {','.join(w['queues']) or '-':<30} "
            f"concurrency {w['concurrency'] or '?':<3} running {w['running']:<4} "
            f"processed {w['processed']}"
        )
    if not status["stage_workers"]:
        lines.append("  no worker takes workflow stages: start one with `aia-engine worker`")
    q = status["queues"]
    lines.append(
        "queued messages: "
        + "  ".join(f"{name} {q[name]}" for name in ("high", "medium", "low", "webhooks"))
    )
    lines.append("tasks: " + "  ".join(f"{s} {n}" for s, n in status["tasks"].items()))
    oldest = status["oldest_waiting"]
    if oldest:
        lines.append(
            f"oldest waiting: {oldest['task_id']} ({oldest['priority']}, {oldest['status']}) "
            f"for {_age(oldest['waiting_s'])}"
        )
    else:
        lines.append("oldest waiting: none")
    lines.append(f"outbox: {status['outbox_unpublished']} unpublished")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
