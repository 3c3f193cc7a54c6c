"""`aia-engine status` without a task id: what an operator checks first.

Workers alive (with their queues, concurrency and running stages) from Celery's inspect, next to
the backlog the core reads from PostgreSQL and Redis (`aia_engine.ops.status`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from celery import Celery

from aia_engine.db.session import Sessions
from aia_engine.ops.status import backlog
from workflows.compiler import STAGE_QUEUES


def system_status(
    sessions: Sessions, client: redis.Redis, app: Celery, *, now: datetime, timeout_s: float
) -> dict[str, Any]:
    queued = backlog(sessions, client, now=now)
    workers = _workers(app, timeout_s)
    return {
        "workers": workers,
        "stage_workers": sum(1 for w in workers if set(w["queues"]) & set(STAGE_QUEUES)),
        **queued,
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
