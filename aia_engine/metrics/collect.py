"""The figures behind `/metrics`, read from the host, Redis and PostgreSQL at request time.

`agent_performance_score` = 100 x (stage runs that completed) / (stage runs that completed or
failed) over the last 24 hours, to one decimal. A figure without evidence is null: the score
when no stage ended in 24 hours; `success_rate`, `error_rate` and `average_response_time` when
no request was answered in the window; `cpu_usage` until an interval has been measured (see
`aia_engine.metrics.host`). `knowledge_atoms` is null: the engine has no knowledge graph yet.
`active_connections` counts open connections to this database (every API, worker and beat
process), from `pg_stat_activity`.
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.metrics.host import host_figures
from aia_engine.metrics.requests import WINDOW_S, window

_BUSINESS = text(
    """
    SELECT
      (SELECT count(*) FROM tasks WHERE status IN ('accepted', 'queued', 'in_progress')) AS active,
      (SELECT count(*) FROM tasks WHERE status = 'completed') AS completed,
      (SELECT count(*) FROM stage_runs WHERE status = 'completed'
          AND finished_at > now() - interval '24 hours') AS ok,
      (SELECT count(*) FROM stage_runs WHERE status = 'failed'
          AND finished_at > now() - interval '24 hours') AS failed,
      (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS connections
    """
)


def guide_metrics(sessions: Sessions, client: redis.Redis) -> dict[str, Any]:
    with sessions.begin() as session:
        row = session.execute(_BUSINESS).one()
    api = window(client)
    count = api.get("requests", 0.0)
    errors = api.get("status_5xx", 0.0) + api.get("status_4xx", 0.0)
    ended = row.ok + row.failed
    return {
        "system_metrics": {**host_figures(), "active_connections": int(row.connections)},
        "api_metrics": {
            "requests_per_second": round(count / WINDOW_S, 2),
            "average_response_time": round(api.get("duration_ms", 0.0) / count, 1)
            if count
            else None,
            "error_rate": round(errors / count, 4) if count else None,
            "success_rate": round(100.0 * (count - errors) / count, 2) if count else None,
            "window_seconds": WINDOW_S,
        },
        "business_metrics": {
            "active_tasks": int(row.active),
            "completed_tasks": int(row.completed),
            "knowledge_atoms": None,
            "agent_performance_score": round(100.0 * row.ok / ended, 1) if ended else None,
        },
    }
