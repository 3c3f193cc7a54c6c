"""Webhook deliveries end to end: real stage and delivery workers, the beat process (event pump,
sweeper, system checks), and receivers on 127.0.0.1 built from the guide's Flask handler.

The retry schedule is compressed (first retry after ~0.2 s, endpoints disabled after 20 s of
failures); nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import standardwebhooks
from sqlalchemy import func, select

from aia_engine.db.models import SystemAlert, Webhook, WebhookAttempt, WebhookDelivery
from aia_engine.webhooks import registry
from aia_engine.webhooks.signing import standard_webhooks_secret
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

pytestmark = pytest.mark.timeout(120)  # the slowest test: 23 s on an idle machine
SECRET = "your_webhook_secret_0123"
NAMES = ("main", "flaky", "broken", "gone", "limited", "redirect", "hang", "healthy", "alerts")


@dataclass
class Hooks:
    services: Services
    receivers: dict[str, Receiver]
    settings: Any

    def register(self, receiver: Receiver, events: list[str], client_id: str) -> str:
        body = registry.WebhookCreate(webhook_url=receiver.url, events=events, secret=SECRET)
        created = registry.register(
            self.services.sessions, body, client_id=client_id, settings=self.settings
        )
        return str(created["webhook_id"])


@pytest.fixture(scope="module")
def hooks(
    services: Services, start_worker: WorkerFactory, worker: subprocess.Popen[bytes]
) -> Iterator[Hooks]:
    receivers = {name: Receiver(SECRET).start() for name in NAMES}
    allow = [r.allow for r in receivers.values()]
    env = {
        "AIA_WEBHOOK_ALLOW": json.dumps(allow),
        "AIA_WEBHOOK_BACKOFF_BASE_S": "0.2",
        "AIA_WEBHOOK_BACKOFF_MAX_S": "1",
        "AIA_WEBHOOK_RETRY_WINDOW_S": "120",
        "AIA_WEBHOOK_DISABLE_AFTER_S": "20",
        "AIA_WEBHOOK_TIMEOUT_S": "2",
        "AIA_WEBHOOK_SWEEP_INTERVAL_S": "0.2",
        "AIA_WEBHOOK_ENDPOINT_CONCURRENCY": "2",
    }
    delivery = start_worker(
        "webhooks", concurrency=8, pool="threads", queues="aia.webhooks", env=env
    )
    beat = start_beat(services, env=env, publishing_events=True)
    settings = services.settings.model_copy(update={"webhook_allow": allow})
    yield Hooks(services, receivers, settings)
    _stop(beat)
    _stop(delivery)
    for r in receivers.values():
        r.stop()


def run_tasks(engine: Engine, client_id: str, count: int) -> list[str]:
    ids = [engine.submit(workflow({"only": noop()}), client_id=client_id) for _ in range(count)]
    for task_id in ids:
        engine.wait(task_id)
    return ids


def attempts(services: Services, webhook_id: str) -> list[WebhookAttempt]:
    with services.sessions.begin() as session:
        rows = session.scalars(
            select(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookAttempt.id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_the_guides_handler_and_standard_webhooks_accept_every_delivery(
    hooks: Hooks, engine: Engine
) -> None:
    receiver = hooks.receivers["main"]
    hooks.register(receiver, ["task.completed", "task.failed"], "client-guide")
    ok = run_tasks(engine, "client-guide", 3)
    failed = engine.submit(
        workflow({"boom": {"agent": "test_noop", "dependencies": [], "params": {"fail": True}}}),
        client_id="client-guide",
    )
    assert engine.wait(failed)["status"] == "failed"
    receiver.wait_for(4)
    assert all(d.verified for d in receiver.deliveries)
    verifier = standardwebhooks.Webhook(standard_webhooks_secret(SECRET))
    for d in receiver.deliveries:
        verifier.verify(d.body, d.headers)  # raises if the signature or timestamp is bad
    completed = {h["task_id"]: h for e, h in receiver.handled if e == "task.completed"}
    assert set(completed) == set(ok)
    assert all(h["results"] for h in completed.values())
    assert [h["task_id"] for e, h in receiver.handled if e == "task.failed"] == [failed]
    first = receiver.deliveries[0].json
    assert {"event_id", "event_type", "timestamp", "sequence", "data"} <= set(first)
    assert first["data"]["status"] in ("completed", "failed")
    # a replay of a genuine delivery, 6 minutes later, is refused by the verifier
    old = receiver.deliveries[0]
    stale = int(old.headers["Webhook-Timestamp"]) - 360
    from aia_engine.webhooks.signing import sign_headers

    replayed = sign_headers(
        [SECRET], msg_id=old.headers["Webhook-Id"], timestamp=stale, body=old.body
    )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(old.body, replayed)


def event_time(body: dict[str, Any]) -> float:
    return datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).timestamp()


def hook_row(services: Services, webhook_id: str) -> Webhook:
    with services.sessions.begin() as session:
        row = session.get(Webhook, webhook_id)
        assert row is not None
        session.expunge(row)
        return row


def test_receiver_down_then_up_gets_every_event(hooks: Hooks, engine: Engine) -> None:
    receiver = hooks.receivers["flaky"]
    receiver.stop()
    hook = hooks.register(receiver, ["task.completed"], "client-flaky")
    started = time.time()
    run_tasks(engine, "client-flaky", 300)

    def failed_attempts() -> int:
        with hooks.services.sessions.begin() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(WebhookAttempt)
                    .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                    .where(WebhookDelivery.webhook_id == hook)
                )
                or 0
            )

    wait_until(lambda: failed_attempts() >= 300, "300 failed attempts", timeout=30)
    assert all(
        a.status_code is None and "connection failed" in (a.error or "")
        for a in attempts(hooks.services, hook)
    )
    down_for = time.time() - started
    assert down_for < 20, "down longer than the disable period: the test proves nothing"
    receiver.start()
    receiver.wait_for(300, timeout=60)
    events = [d.json["event_id"] for d in receiver.deliveries]
    assert len(set(events)) == 300 and all(d.verified for d in receiver.deliveries)
    verifier = standardwebhooks.Webhook(standard_webhooks_secret(SECRET))
    for d in receiver.deliveries:
        verifier.verify(d.body, d.headers)
    assert hook_row(hooks.services, hook).active


def test_an_endpoint_failing_for_the_disable_period_is_disabled_with_one_alert(
    hooks: Hooks, engine: Engine
) -> None:
    broken, alerts = hooks.receivers["broken"], hooks.receivers["alerts"]
    broken.status = 500
    hook = hooks.register(broken, ["task.completed"], "client-broken")
    hooks.register(alerts, ["system.alert"], "client-broken")
    hooks.register(hooks.receivers["main"], ["system.alert"], "client-other")  # not theirs
    run_tasks(engine, "client-broken", 5)
    wait_until(
        lambda: not hook_row(hooks.services, hook).active, "the endpoint to be disabled", timeout=60
    )
    seen = len(broken.deliveries)
    alerts.wait_for(1, timeout=20)
    time.sleep(3)  # time for any duplicate to show up
    assert len(broken.deliveries) == seen, "a disabled endpoint still gets deliveries"
    assert "failed since" in (hook_row(hooks.services, hook).disabled_reason or "")
    with hooks.services.sessions.begin() as session:
        rows = session.scalars(
            select(SystemAlert).where(SystemAlert.alert_type == "webhook_disabled")
        ).all()
        mine = [r for r in rows if r.details["webhook_id"] == hook]
        assert len(mine) == 1 and mine[0].client_id == "client-broken"
    handled = [h for e, h in alerts.handled if e == "system.alert"]
    assert len(handled) == 1 and handled[0]["severity"] == "critical"
    assert hook in handled[0]["message"]
    assert not any(
        d.json["event_type"] == "system.alert" and hook in d.body.decode()
        for d in hooks.receivers["main"].deliveries
    ), "another client saw the alert"
    assert broken.deliveries and all(d.verified for d in broken.deliveries)


def test_410_disables_at_once(hooks: Hooks, engine: Engine) -> None:
    gone = hooks.receivers["gone"]
    gone.status = 410
    hook = hooks.register(gone, ["task.completed"], "client-gone")
    run_tasks(engine, "client-gone", 1)
    wait_until(
        lambda: not hook_row(hooks.services, hook).active, "the endpoint to be disabled", timeout=20
    )
    assert "410" in (hook_row(hooks.services, hook).disabled_reason or "")
    time.sleep(1)
    tried = attempts(hooks.services, hook)
    assert [a.status_code for a in tried] == [410]
    assert len(gone.deliveries) == 1


def test_429_with_retry_after_waits_as_asked(hooks: Hooks, engine: Engine) -> None:
    limited = hooks.receivers["limited"]
    limited.status, limited.retry_after = 429, "2"
    hook = hooks.register(limited, ["task.completed"], "client-limited")
    run_tasks(engine, "client-limited", 1)
    limited.wait_for(1, timeout=20)
    limited.status, limited.retry_after = 200, None
    limited.wait_for(2, timeout=20)
    first, second = limited.deliveries[:2]
    assert second.received_at - first.received_at >= 1.9  # not the 0.2 s backoff
    assert first.json == second.json  # same body, re-signed
    wait_until(
        lambda: len(attempts(hooks.services, hook)) == 2, "the second attempt's record", timeout=10
    )
    assert [a.status_code for a in attempts(hooks.services, hook)] == [429, 200]


def test_a_redirect_is_not_followed(hooks: Hooks, engine: Engine) -> None:
    redirect = hooks.receivers["redirect"]
    redirect.status, redirect.location = 302, "http://169.254.169.254/latest/meta-data/"
    hook = hooks.register(redirect, ["task.completed"], "client-redirect")
    run_tasks(engine, "client-redirect", 1)
    wait_until(lambda: len(attempts(hooks.services, hook)) >= 2, "two attempts", timeout=20)
    for attempt in attempts(hooks.services, hook):
        assert attempt.status_code == 302 and attempt.address == "127.0.0.1"
        assert "redirect not followed" in (attempt.error or "")
        assert attempt.next_attempt_at is not None  # a failure: retried later
    redirect.status = 200


def test_a_hanging_endpoint_does_not_delay_a_healthy_one(hooks: Hooks, engine: Engine) -> None:
    hang, healthy = hooks.receivers["hang"], hooks.receivers["healthy"]
    hang.hang_s = 6.0  # past the 2 s delivery timeout
    hooks.register(hang, ["task.completed"], "client-hang")
    hooks.register(healthy, ["task.completed"], "client-hang")
    try:
        started = time.time()
        run_tasks(engine, "client-hang", 20)
        healthy.wait_for(20, timeout=30)
        lags = [d.received_at - event_time(d.json) for d in healthy.deliveries]
        assert max(lags) < 1.5, lags  # each within moments of its event, hang or not
        # meanwhile the hanging endpoint never held more than its 2 slots
        assert len(hang.deliveries) <= 2 * (int((time.time() - started) / 2) + 2)
    finally:
        hang.hang_s = 0.0
