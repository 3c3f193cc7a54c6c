"""System alerts from the beat process: no stage worker alive, a queue backlog; one alert per
episode, delivered to every client subscribed to `system.alert`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import select

from aia_engine.db.models import SystemAlert
from aia_engine.metrics.prometheus import QUEUES
from aia_engine.webhooks import registry
from tests.conftest import wait_until
from tests.integration.conftest import (
    Engine,
    Services,
    WorkerFactory,
    _stop,
    noop,
    start_beat,
    workflow,
)
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.timeout(90)  # 13 s on an idle machine
SECRET = "alerts-secret-0123456789"


@pytest.fixture(scope="module")
def beat(
    services: Services, start_worker: WorkerFactory
) -> Iterator[tuple[Receiver, dict[str, str]]]:
    receiver = Receiver(SECRET).start()
    env = {
        "AIA_WEBHOOK_ALLOW": json.dumps([receiver.allow]),
        "AIA_ALERT_CHECK_INTERVAL_S": "0.5",
        "AIA_ALERT_NO_WORKER_S": "2",
        "AIA_ALERT_QUEUE_BACKLOG": "5",
    }
    settings = services.settings.model_copy(update={"webhook_allow": [receiver.allow]})
    for client in ("alerts-a", "alerts-b"):
        body = registry.WebhookCreate(
            webhook_url=receiver.url, events=["system.alert"], secret=SECRET
        )
        registry.register(services.sessions, body, client_id=client, settings=settings)
    webhooks = start_worker(
        "alert-hooks", pool="threads", concurrency=4, queues="aia.webhooks", env=env
    )
    proc = start_beat(services, env, name="alert-beat")
    yield receiver, env
    _stop(proc)
    _stop(webhooks)
    receiver.stop()


def alerts(services: Services, alert_type: str) -> list[SystemAlert]:
    with services.sessions.begin() as session:
        rows = list(
            session.scalars(select(SystemAlert).where(SystemAlert.alert_type == alert_type))
        )
        session.expunge_all()
        return rows


def test_no_worker_and_backlog_alerts_fire_once_per_episode(
    beat: tuple[Receiver, dict[str, str]], services: Services, engine: Engine,
    start_worker: WorkerFactory,
) -> None:  # fmt: skip
    receiver, _env = beat
    # Messages earlier modules left in the session's broker (their workers are gone) would be
    # a backlog of their own: this test's episode starts from empty queues.
    broker = redis.Redis.from_url(services.redis_url)
    try:
        broker.delete(*[q + s for q in QUEUES for s in ("", "\x06\x163", "\x06\x166", "\x06\x169")])
    finally:
        broker.close()
    # No stage worker runs: tasks pile up in the queue.
    ids = [engine.submit(workflow({"only": noop()})) for _ in range(8)]

    def backlog_here() -> list[SystemAlert]:
        """This test's queue only: in a full run, the beat's webhook sweep re-queues deliveries
        earlier modules left due (to receivers long gone), which can back up `aia.webhooks`."""
        return [a for a in alerts(services, "queue_backlog") if a.details["queue"] == "aia.default"]

    wait_until(
        lambda: alerts(services, "no_workers") and backlog_here(),
        "the no-worker and backlog alerts",
        timeout=40,
        interval=0.2,
    )
    time.sleep(2)  # several more checks: still one alert each
    assert len(alerts(services, "no_workers")) == 1
    raised = backlog_here()
    assert len(raised) == 1, [(a.dedupe_key, a.details) for a in raised]
    (backlog,) = raised
    assert backlog.details["depth"] > 5
    receiver.wait_for(4, timeout=20)  # two alerts, each to both subscribed clients
    time.sleep(1)
    handled = [
        h
        for e, h in receiver.handled
        if e == "system.alert"
        and (h["alert_type"] == "no_workers" or "aia.default" in h["message"])
    ]
    assert len(handled) == 4, handled
    assert {h["severity"] for h in handled} == {"critical", "warning"}
    # A worker starts: the backlog drains and the episodes end without new alerts.
    worker: subprocess.Popen[bytes] = start_worker("late-worker")
    try:
        for task_id in ids:
            engine.wait(task_id)
        time.sleep(2)
        assert len(alerts(services, "no_workers")) == 1
        assert len(backlog_here()) == 1
    finally:
        _stop(worker)
