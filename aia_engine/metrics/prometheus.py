"""The Prometheus exposition, built at scrape time from shared state, so every API process
answers the same: API request counters from Redis (summed over processes), task, stage and
webhook figures from PostgreSQL (whatever worker wrote them), queue depths from the broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.metrics.host import host_figures
from aia_engine.metrics.requests import totals
from aia_engine.search.indexing import status_counts
from workflows.compiler import STAGE_QUEUES

BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
QUEUES = (*STAGE_QUEUES, "aia.webhooks", "aia.embeddings")
_DURATION = "extract(epoch FROM finished_at - started_at)"
_STAGE_HISTOGRAM = text(
    "SELECT agent, count(*) AS n, coalesce(sum("
    + _DURATION
    + "), 0) AS total, "
    + ", ".join(
        f"count(*) FILTER (WHERE {_DURATION} <= {b}) AS le_{i}" for i, b in enumerate(BUCKETS)
    )
    + " FROM stage_runs WHERE status = 'completed' AND started_at IS NOT NULL"
    " AND finished_at IS NOT NULL GROUP BY agent"
)


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (Redis transport: one list per queue and priority step)."""
    names = [(q, q + s) for q in QUEUES for s in ("", "\x06\x163", "\x06\x166", "\x06\x169")]
    pipe = client.pipeline(transaction=False)
    for _, key in names:
        pipe.llen(key)
    depths: dict[str, int] = dict.fromkeys(QUEUES, 0)
    for (queue, _), count in zip(names, pipe.execute(), strict=True):
        depths[queue] += int(count)
    return depths


class EngineCollector:
    def __init__(
        self, sessions: Sessions, client: redis.Redis, local: dict[str, float] | None = None
    ) -> None:
        """`local`: figures of the answering process only (named `aia_<name>`, gauges)."""
        self.sessions, self.client, self.local = sessions, client, local or {}

    def collect(self) -> Iterator[Metric]:
        for name, value in sorted(self.local.items()):
            gauge = GaugeMetricFamily(f"aia_{name}", f"{name} (this API process)", labels=["pid"])
            gauge.add_metric([str(os.getpid())], value)
            yield gauge
        yield from self._api()
        yield from self._database()
        depth = GaugeMetricFamily(
            "aia_queue_depth", "Messages waiting in a broker queue", labels=["queue"]
        )
        for queue, n in queue_depths(self.client).items():
            depth.add_metric([queue], n)
        yield depth
        system = GaugeMetricFamily(
            "aia_host_usage_percent",
            "CPU, memory and disk use of the API host (CPU: since this process's previous "
            "reading; no sample until one interval has been measured)",
            labels=["resource"],
        )
        for name, share in host_figures().items():
            if share is not None:  # no sample rather than a figure that measured nothing
                system.add_metric([name.removesuffix("_usage")], share)
        yield system

    def _api(self) -> Iterator[Metric]:
        found = totals(self.client)
        requests = CounterMetricFamily(
            "aia_api_requests", "HTTP requests answered, by status class", labels=["status_class"]
        )
        for name, value in sorted(found.items()):
            if name.startswith("status_"):
                requests.add_metric([name.removeprefix("status_")], value)
        yield requests
        yield SummaryMetricFamily(
            "aia_api_request_duration_seconds",
            "Time to answer HTTP requests",
            count_value=int(found.get("requests", 0.0)),
            sum_value=found.get("duration_ms", 0.0) / 1000,
        )

    def _database(self) -> Iterator[Metric]:
        with self.sessions.begin() as session:
            tasks = session.execute(
                text("SELECT status, count(*) FROM tasks GROUP BY status")
            ).all()
            stages = session.execute(
                text(
                    "SELECT agent, status, count(*) FROM stage_runs WHERE status IN "
                    "('completed', 'failed', 'skipped', 'cancelled') GROUP BY agent, status"
                )
            ).all()
            histogram = session.execute(_STAGE_HISTOGRAM).all()
            attempts = session.execute(
                text(
                    "SELECT CASE WHEN status_code BETWEEN 200 AND 299 THEN 'delivered' "
                    "ELSE 'failed' END, count(*) FROM webhook_attempts GROUP BY 1"
                )
            ).all()
            alerts = session.execute(
                text("SELECT alert_type, count(*) FROM system_alerts GROUP BY alert_type")
            ).all()
            graphs = session.execute(
                text(
                    "SELECT count(*), coalesce(sum(nodes), 0), coalesce(sum(relationships), 0) "
                    "FROM kg_graphs"
                )
            ).one()
            embeddings = status_counts(session)
        yield _gauge("aia_tasks", "Tasks by status", ["status"], tasks)
        yield _counter(
            "aia_stage_runs",
            "Stage runs that ended, by agent and outcome",
            ["agent", "outcome"],
            stages,
        )
        stage_seconds = HistogramMetricFamily(
            "aia_stage_duration_seconds", "Completed stage durations by agent", labels=["agent"]
        )
        for row in histogram:
            cumulative = [(str(b), float(getattr(row, f"le_{i}"))) for i, b in enumerate(BUCKETS)]
            stage_seconds.add_metric(
                [row.agent], [*cumulative, ("+Inf", float(row.n))], sum_value=float(row.total)
            )
        yield stage_seconds
        yield _counter(
            "aia_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"], attempts
        )
        yield _counter("aia_system_alerts", "System alerts raised, by type", ["alert_type"], alerts)
        yield _gauge(
            "aia_knowledge_graph_atoms",
            "Nodes and relationships in the knowledge graphs of every client, by kind",
            ["kind"],
            [("nodes", graphs[1]), ("relationships", graphs[2])],
        )
        yield _gauge("aia_knowledge_graphs", "Clients with a knowledge graph", [], [(graphs[0],)])
        yield _gauge(
            "aia_kg_embeddings",
            "Knowledge-graph entities of every client by embedding status (semantic search)",
            ["status"],
            sorted(embeddings.items()),
        )


def _gauge(name: str, doc: str, labels: list[str], rows: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) for v in values], float(count))
    return family


def _counter(name: str, doc: str, labels: list[str], rows: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) for v in values], float(count))
    return family


def exposition(
    sessions: Sessions, client: redis.Redis, local: dict[str, float] | None = None
) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(sessions, client, local))
    return generate_latest(registry)
