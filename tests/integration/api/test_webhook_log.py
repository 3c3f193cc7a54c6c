"""The delivery log, the test ping and redelivery over HTTP; URL checks again at delivery time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from aia_engine.clock import utcnow
from aia_engine.events.fanout import Outgoing, create_deliveries
from aia_engine.webhooks import registry
from aia_engine.webhooks.delivery import attempt_delivery, http_client
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import Services, WorkerFactory, _stop
from tests.integration.receiver import Receiver

SECRET = "log-test-secret-0123456789"


@dataclass
class Setup:
    api: LiveApi
    receiver: Receiver
    dns: dict[str, list[str]]
    settings: object

    def resolve(self, host: str, _port: int) -> list[str]:
        return list(self.dns.get(host, []))


@pytest.fixture(scope="module")
def setup(services: Services, start_worker: WorkerFactory) -> Iterator[Setup]:
    receiver = Receiver(SECRET).start()
    # "receiver.test" is an allowed internal name that resolves to the receiver; names never
    # reach real DNS (no packet leaves 127.0.0.1).
    allow = [receiver.allow, f"receiver.test:{receiver.port}"]
    dns = {"receiver.test": ["127.0.0.1"], "hooks.example": ["93.184.216.34"]}
    settings = services.settings.model_copy(update={"webhook_allow": allow})
    holder = Setup(None, receiver, dns, settings)  # type: ignore[arg-type]
    app = create_app(settings, resolver=holder.resolve)
    server, thread, url = serve(app)
    holder.api = LiveApi(url, app, server)
    delivery = start_worker(
        "log-webhooks",
        concurrency=4,
        pool="threads",
        queues="aia.webhooks",
        env={"AIA_WEBHOOK_ALLOW": json.dumps(allow)},
    )
    yield holder
    _stop(delivery)
    server.should_exit = True
    thread.join(10)
    receiver.stop()


@pytest.fixture
def http(setup: Setup, make_client: Callable[..., Credentials]) -> Iterator[httpx.Client]:
    creds = make_client()
    token = token_for(setup.api, creds)
    with setup.api.client(headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def register(http: httpx.Client, url: str, events: list[str] | None = None) -> str:
    r = http.post(
        "/webhooks/register",
        json={"webhook_url": url, "events": events or ["task.completed"], "secret": SECRET},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["webhook_id"])


def test_ping_is_signed_logged_and_connects_to_the_checked_address(
    setup: Setup, http: httpx.Client
) -> None:
    hook = register(http, f"http://receiver.test:{setup.receiver.port}/aia-webhook")
    before = len(setup.receiver.deliveries)
    r = http.post(f"/webhooks/{hook}/test")
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["status"] == "delivered" and shown["event_type"] == "webhook.test"
    assert shown["attempts"][0]["status_code"] == 200
    assert shown["attempts"][0]["latency_ms"] > 0
    assert '"received"' in shown["attempts"][0]["response_body"]
    got = setup.receiver.deliveries[before]
    assert got.verified and got.json["data"]["webhook_id"] == hook
    assert got.headers["Host"] == f"receiver.test:{setup.receiver.port}"  # name kept, IP used
    log = http.get(f"/webhooks/{hook}/deliveries").json()
    assert [d["delivery_id"] for d in log["deliveries"]] == [shown["delivery_id"]]


def test_failed_ping_is_logged_with_status_error_and_truncated_body(
    setup: Setup, http: httpx.Client
) -> None:
    hook = register(http, setup.receiver.url)
    setup.receiver.status = 500
    try:
        shown = http.post(f"/webhooks/{hook}/test").json()
    finally:
        setup.receiver.status = 200
    assert shown["status"] == "failed" and shown["next_attempt_at"] is None  # pings: one try
    attempt = shown["attempts"][0]
    assert attempt["status_code"] == 500 and attempt["error"] == "HTTP 500"
    assert len(attempt["response_body"]) <= 1024
    # a failing ping does not count against the endpoint
    assert http.get(f"/webhooks/{hook}").json()["active"] is True


def test_redeliver_sends_the_same_event_again(setup: Setup, http: httpx.Client) -> None:
    hook = register(http, setup.receiver.url)
    delivery = http.post(f"/webhooks/{hook}/test").json()
    count = len(setup.receiver.deliveries)
    r = http.post(f"/webhooks/deliveries/{delivery['delivery_id']}/redeliver")
    assert r.status_code == 202, r.text
    setup.receiver.wait_for(count + 1, timeout=20)
    again = setup.receiver.deliveries[count]
    assert again.json["event_id"] == delivery["event_id"] and again.verified
    shown = wait_until(
        lambda: (
            len(
                (d := http.get(f"/webhooks/deliveries/{delivery['delivery_id']}").json())[
                    "attempts"
                ]
            )
            == 2
            and d
        ),
        "the redelivery's attempt recorded",
        timeout=10,
    )
    assert [a["status_code"] for a in shown["attempts"]] == [200, 200]


def test_delivery_log_is_the_callers_only(
    setup: Setup, http: httpx.Client, make_client: Callable[..., Credentials]
) -> None:
    hook = register(http, setup.receiver.url)
    delivery = http.post(f"/webhooks/{hook}/test").json()["delivery_id"]
    other_token = token_for(setup.api, make_client())
    with setup.api.client(headers={"Authorization": f"Bearer {other_token}"}) as other:
        for method, path in [
            ("GET", f"/webhooks/{hook}/deliveries"),
            ("GET", f"/webhooks/deliveries/{delivery}"),
            ("POST", f"/webhooks/deliveries/{delivery}/redeliver"),
            ("POST", f"/webhooks/{hook}/test"),
        ]:
            r = other.request(method, path)
            assert r.status_code == 404, (path, r.text)
            assert r.json()["error"]["type"] == "NotFound"


def test_log_paging_and_bad_parameters(setup: Setup, http: httpx.Client) -> None:
    hook = register(http, setup.receiver.url)
    ids = [http.post(f"/webhooks/{hook}/test").json()["delivery_id"] for _ in range(3)]
    first = http.get(f"/webhooks/{hook}/deliveries", params={"limit": 2}).json()
    assert first["count"] == 2 and first["next_cursor"]
    rest = http.get(
        f"/webhooks/{hook}/deliveries", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    seen = [d["delivery_id"] for d in first["deliveries"] + rest["deliveries"]]
    assert sorted(seen) == sorted(ids) and rest["next_cursor"] is None
    for params in ({"limit": 0}, {"limit": "x"}, {"status": "odd"}, {"cursor": "dlv_nope"}):
        r = http.get(f"/webhooks/{hook}/deliveries", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"]


def test_disabled_endpoints_refuse_pings_and_redelivery(setup: Setup, http: httpx.Client) -> None:
    hook = register(http, setup.receiver.url)
    delivery = http.post(f"/webhooks/{hook}/test").json()["delivery_id"]
    http.patch(f"/webhooks/{hook}", json={"active": False})
    assert http.post(f"/webhooks/{hook}/test").status_code == 409
    assert http.post(f"/webhooks/deliveries/{delivery}/redeliver").status_code == 409


class Recording(httpx.BaseTransport):
    """Wraps the real transport and notes every request that reaches it."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        return self.inner.handle_request(request)


def test_a_host_that_now_resolves_privately_gets_no_connection(services: Services) -> None:
    """Registered while it resolved to a public address; at delivery it resolves to 10.1.2.3."""
    settings = services.settings
    body = registry.WebhookCreate(
        webhook_url="https://rebind.example/hook", events=["task.completed"], secret=SECRET
    )
    hook = registry.register(
        services.sessions, body, client_id="rebind", settings=settings,
        resolve=lambda _h, _p: ["93.184.216.34"],
    )["webhook_id"]  # fmt: skip
    with services.sessions.begin() as session:
        out = Outgoing("rebind", "task.completed", "evt_rebind", None, {"event_id": "evt_rebind"})
        (delivery,) = create_deliveries(session, [out], now=utcnow())
    transport = Recording()
    client = http_client(settings)
    client._transport = transport  # every connection the attempt makes goes through here
    outcome = attempt_delivery(
        services.sessions, delivery, settings, http=client,
        resolve=lambda _h, _p: ["10.1.2.3"],
    )  # fmt: skip
    assert outcome.kind == "retry" and transport.requests == []
    from tests.integration.test_webhook_delivery import attempts

    (attempt,) = attempts(services, hook)
    assert attempt.status_code is None and "refused before connecting" in (attempt.error or "")
    assert "10.1.2.3" in attempt.error
