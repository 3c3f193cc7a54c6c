"""The figures behind `/metrics`, read from the host, Redis and PostgreSQL at request time.

`business_metrics` are the calling client's own (tenancy: one client never learns how many
tasks another runs); system-wide task figures are in the Prometheus exposition, which needs the
`admin` scope. `agent_performance_score` = 100 x (the client's stage runs that completed) /
(those that completed or failed) over the last 24 hours, to one decimal. A figure without
evidence is null: the score when no stage of the client's ended in 24 hours; `success_rate`,
`error_rate` and `average_response_time` when no request was answered in the window;
`cpu_usage` until an interval has been measured (see `aia_engine.metrics.host`).
`knowledge_atoms` = nodes + relationships in the client's knowledge graph (kg_graphs' counts,
kept by every write): 0 for a client with no graph, a real figure. `embeddings` counts the
client's entities by embedding status (pending, embedded, failed; semantic search). `active_connections` counts
open connections to this database (every API, worker and beat process), from
`pg_stat_activity`.
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.metrics.host import host_figures
from aia_engine.metrics.requests import WINDOW_S, window
from aia_engine.search.indexing import status_counts

_BUSINESS = text(
    """
    SELECT
      (SELECT count(*) FROM tasks WHERE client_id = :client
          AND status IN ('accepted', 'queued', 'in_progress')) AS active,
      (SELECT count(*) FROM tasks WHERE client_id = :client AND status = 'completed') AS completed,
      (SELECT count(*) FROM stage_runs s JOIN tasks t ON t.id = s.task_id
          WHERE t.client_id = :client AND s.status = 'completed'
          AND s.finished_at > now() - interval '24 hours') AS ok,
      (SELECT count(*) FROM stage_runs s JOIN tasks t ON t.id = s.task_id
          WHERE t.client_id = :client AND s.status = 'failed'
          AND s.finished_at > now() - interval '24 hours') AS failed,
      (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS connections,
      (SELECT coalesce(sum(nodes + relationships), 0) FROM kg_graphs
          WHERE client_id = :client) AS atoms
    """
)


def guide_metrics(sessions: Sessions, client: redis.Redis, *, client_id: str) -> dict[str, Any]:
    """The guide's `/metrics` JSON; `business_metrics` count only `client_id`'s tasks."""
    with sessions.begin() as session:
        row = session.execute(_BUSINESS, {"client": client_id}).one()
        embeddings = status_counts(session, client_id)
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
            "knowledge_atoms": int(row.atoms),
            "embeddings": embeddings,
            "agent_performance_score": round(100.0 * row.ok / ended, 1) if ended else None,
        },
    }
