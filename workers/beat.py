"""What the beat process runs beside its schedule: the event pump, the system checks and the
health samples (the dashboard's uptime, aia_engine/ops/health_history.py).

All three are threads of `celery beat` (started on `beat_init`), because beat is the one process an
installation runs exactly once; the pump also takes a PostgreSQL advisory lock, so a second
beat (or `aia-engine events`) only stands by.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from aia_engine.db.session import make_engine, make_sessions
from aia_engine.events.pump import EventPump
from aia_engine.metrics.prometheus import queue_depths
from aia_engine.ops.health_history import HealthSampler, engine_checks
from aia_engine.ops.monitor import SystemMonitor
from aia_engine.redis.connect import sync_client
from aia_engine.settings import Settings
from workers.dispatch import send_deliveries
from workflows.compiler import STAGE_QUEUES

log = logging.getLogger(__name__)


def stage_workers(app: Celery) -> int:
    """Workers consuming a stage queue (webhook-only workers do not run workflows)."""
    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    return sum(1 for queues in replies.values() if {q["name"] for q in queues} & set(STAGE_QUEUES))


def start_background(app: Celery, settings: Settings) -> list[threading.Event]:
    # Not the workers' sessions (an operator may relax those): a published position must
    # survive a database crash.
    sessions = make_sessions(make_engine(settings, pool_size=3))
    client = sync_client(settings.require_redis_url(), timeout=5)

    def send(ids: Any) -> None:
        send_deliveries(app, ids)

    pump = EventPump(
        sessions,
        client,
        send,
        batch_size=settings.event_batch_size,
        poll_interval_s=settings.event_poll_interval_s,
    )
    _, pump_stop = pump.start()
    monitor = SystemMonitor(
        sessions,
        settings,
        count_workers=lambda: stage_workers(app),
        queue_depths=lambda: queue_depths(client),
        send_deliveries=send,
    )
    monitor_stop = threading.Event()
    threading.Thread(
        target=monitor.run, args=(monitor_stop,), name="aia-monitor", daemon=True
    ).start()
    sampler = HealthSampler(
        sessions,
        engine_checks(sessions, client, lambda: stage_workers(app)),
        interval_s=settings.bi_health_sample_s,
        keep_days=settings.bi_history_keep_days,
    )
    sampler_stop = threading.Event()
    threading.Thread(
        target=sampler.run, args=(sampler_stop,), name="aia-health-samples", daemon=True
    ).start()
    log.info("event pump, system checks and health samples started")
    return [pump_stop, monitor_stop, sampler_stop]
