"""The operations figures' SQL: the engine's own records for one client over a window ending now.

- tasks: finished in the window as `completed` or `failed` (cancelled ones are the caller's
  choice, not the engine's success or failure, and are left out);
- stages: stage runs of the client's tasks finished in the window as `completed` or `failed`
  (skipped and cancelled ones never ran to an outcome); only tasks still running or finished in
  the window are read (a stage cannot end after its task), so the query reads the window's
  tasks through ix_tasks_client_finished, not every task the client ever ran;
- requests: `api_request_stats`, the API's per-client per-minute request counts and durations;
- health: `health_samples`, the beat's one sample a minute of the engine's health (shared by
  every client: it is the system's uptime).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

WINDOW_DAYS = 30

_TASKS = text(
    """
    SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'completed' AND finished_at > :week) AS completed_week,
           count(*) FILTER (WHERE status = 'failed' AND finished_at > :week) AS failed_week,
           count(*) FILTER (WHERE status = 'completed' AND finished_at <= :week
                              AND finished_at > :week2) AS completed_previous_week,
           count(*) FILTER (WHERE status = 'failed' AND finished_at <= :week
                              AND finished_at > :week2) AS failed_previous_week
      FROM tasks
     WHERE client_id = :c AND finished_at > :since AND finished_at <= :now
       AND status IN ('completed', 'failed')
    """
)
_STAGES = text(
    """
    SELECT count(*) FILTER (WHERE s.status = 'completed') AS completed,
           count(*) AS finished
      FROM stage_runs s JOIN tasks t ON t.id = s.task_id
     WHERE t.client_id = :c AND s.finished_at > :since AND s.finished_at <= :now
       AND s.status IN ('completed', 'failed')
       AND (t.finished_at IS NULL OR t.finished_at > :since)
    """
)
_REQUESTS = text(
    """
    SELECT coalesce(sum(requests), 0) AS requests, sum(total_ms) AS total_ms
      FROM api_request_stats
     WHERE client_id = :c AND minute > :since AND minute <= :now
    """
)
_HEALTH = text(
    """
    SELECT count(*) AS samples, count(*) FILTER (WHERE healthy) AS healthy
      FROM health_samples
     WHERE sampled_at > :since AND sampled_at <= :now
    """
)


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def operations(session: Session, client_id: str, *, now: datetime) -> dict[str, Any]:
    """The four figures, the week-over-week completion rates and the counts behind them."""
    since = now - timedelta(days=WINDOW_DAYS)
    week, week2 = now - timedelta(days=7), now - timedelta(days=14)
    args = {"c": client_id, "since": since, "now": now, "week": week, "week2": week2}
    tasks = session.execute(_TASKS, args).mappings().one()
    stages = session.execute(_STAGES, args).mappings().one()
    requests = session.execute(_REQUESTS, args).mappings().one()
    health = session.execute(_HEALTH, args).mappings().one()
    finished = tasks["completed"] + tasks["failed"]
    timed = int(requests["requests"])
    return {
        "task_completion_rate": _rate(tasks["completed"], finished),
        "average_response_time": (
            round(float(requests["total_ms"]) / timed / 1000, 4) if timed else None
        ),
        "system_uptime": _rate(health["healthy"], health["samples"]),
        "agent_efficiency": _rate(stages["completed"], stages["finished"]),
        "completion_rate_week": _rate(
            tasks["completed_week"], tasks["completed_week"] + tasks["failed_week"]
        ),
        "completion_rate_previous_week": _rate(
            tasks["completed_previous_week"],
            tasks["completed_previous_week"] + tasks["failed_previous_week"],
        ),
        "details": {
            "tasks_finished": finished,
            "tasks_completed": tasks["completed"],
            "stages_finished": stages["finished"],
            "stages_completed": stages["completed"],
            "requests_timed": timed,
            "health_samples": health["samples"],
            "window_days": WINDOW_DAYS,
        },
    }
