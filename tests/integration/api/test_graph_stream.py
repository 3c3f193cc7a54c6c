"""Knowledge-graph changes through the event log, against a live API, the real event pump,
PostgreSQL and Redis: `GET /knowledge-graph/stream` (filters, resume, tenancy), task streams
that stay free of graph changes, and webhook deliveries of graph event types.

Changes are written here the way every graph writer does (versions.begin_write, then
changes.record / record_summary, in one transaction), so these tests do not depend on the
HTTP write endpoints. The pump runs in this process; its deliveries are attempted by the same
`attempt_delivery` the delivery worker runs, to a receiver built from the guide's handler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
import standardwebhooks
from sqlalchemy import text

from aia_engine.events.pump import EventPump
from aia_engine.events.replay import events_after, graph_events_after
from aia_engine.graph import changes, versions
from aia_engine.graph.changes import Change
from aia_engine.webhooks import registry
from aia_engine.webhooks.delivery import attempt_delivery, http_client
from aia_engine.webhooks.signing import standard_webhooks_secret
from aia_engine.webhooks.urls import system_resolver
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve
from tests.integration.api.test_streams import Event, authed_client, read_events
from tests.integration.conftest import Services
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.timeout(60)
SECRET = "graph_webhook_secret_0123"
PURCHASE = {
    "relationship_id": "r1", "type": "PURCHASED", "source": "c1", "target": "p1",
    "properties": {"amount": 10},
}  # fmt: skip


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver(SECRET).start()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def graph_api(services: Services, receiver: Receiver) -> Iterator[LiveApi]:
    """A live API whose streams beat every second, and the event pump, whose deliveries are
    attempted at once (as the delivery worker would) to the receiver."""
    settings = services.settings.model_copy(
        update={"sse_heartbeat_s": 1.0, "webhook_allow": [receiver.allow]}
    )
    app = create_app(settings)
    server, thread, url = serve(app)
    http = http_client(settings)

    def deliver(ids: Any) -> None:
        for delivery_id in ids:
            attempt_delivery(services.sessions, delivery_id, settings, http=http,
                             resolve=system_resolver)  # fmt: skip

    pump_redis = redis.Redis.from_url(services.redis_url)
    pump = EventPump(services.sessions, pump_redis, deliver)
    assert pump.acquire(), "another event pump holds the lock"
    pump_thread, stop = pump.start()
    yield LiveApi(url, app, server)
    stop.set()
    pump_thread.join(10)
    pump_redis.close()
    http.close()
    server.should_exit = True
    thread.join(10)


def write(services: Services, client_id: str, *batch: Change, source: str = "api") -> int:
    """One graph write: a new version, one event per change, committed together."""
    with services.sessions.begin() as session:
        version = versions.begin_write(session, client_id)
        changes.record(session, client_id, version, list(batch), source=source)
    return version


def write_summary(services: Services, client_id: str, counts: dict[str, int], *types: str) -> None:
    with services.sessions.begin() as session:
        version = versions.begin_write(session, client_id)
        changes.record_summary(
            session, client_id, version, counts=counts, entity_types=list(types), source="import"
        )


def node(change: str, node_id: str, entity_type: str = "customer") -> Change:
    return Change(change, node_id, entity_type)


def ids_of(events: list[Event]) -> list[str]:
    return [e.data["data"]["entity_id"] or e.data["data"]["change_type"] for e in events]


def open_graph(http: httpx.Client, params: Any = None, **headers: str) -> Any:
    return http.stream("GET", "/knowledge-graph/stream", params=params, headers=headers)


def test_filters_are_respected(
    graph_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    # The guide's filter, given once comma-separated and once repeated.
    params = [
        ("entity_types", "customer,product"),
        ("change_types", "created"),
        ("change_types", "updated,relationship_added"),
    ]
    with authed_client(graph_api, creds) as http, open_graph(http, params) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        me = creds.client_id
        write(services, me, node("created", "c1"), node("created", "o1", "order"))
        write(services, me, node("deleted", "c2"))  # change type not asked for
        write(services, me, Change("relationship_added", "c1", "customer", PURCHASE))
        write(services, me, Change("relationship_added", "o1", "order", PURCHASE))  # source: order
        write(services, me, node("updated", "p1", "product"))
        write_summary(services, me, {"created": 50}, "order")  # no listed entity type
        write_summary(services, me, {"deleted": 9}, "product")  # no listed change type
        write_summary(services, me, {"created": 40, "deleted": 1}, "product", "order")
        write(services, me, node("created", "c9"))  # the last one: the reader stops there
        events, _ = read_events(r, until=lambda ev: ev[-1].data["data"]["entity_id"] == "c9")
    assert ids_of(events) == ["c1", "c1", "p1", "imported", "c9"]
    added = events[1].data
    assert added["event_type"] == "knowledge_graph.relationship_added"
    assert added["data"]["relationship"] == PURCHASE
    summary = events[3].data["data"]
    assert summary["changes"] == {"created": 40, "deleted": 1}
    assert summary["entity_types"] == ["order", "product"]
    for event in events:  # what the guide's streaming example reads
        update = event.data["data"]
        assert {"change_type", "entity_id", "entity_type", "timestamp"} <= set(update)
        assert event.type == event.data["event_type"] == f"knowledge_graph.{update['change_type']}"
        assert event.data["sequence"] == update["graph_version"]
        assert event.data["event_id"] == f"evt_{event.id}"


def test_an_unknown_change_type_is_refused_with_the_valid_ones(
    graph_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    with authed_client(graph_api, make_client()) as http:
        r = http.get("/knowledge-graph/stream", params={"change_types": "created,renamed"})
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["code"] == "E050" and error["details"]["field"] == "change_types"
        assert "relationship_added" in error["details"]["allowed_values"]
        r = http.get("/knowledge-graph/stream", params={"entity_types": "customer product"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "E001"


def test_resuming_with_last_event_id_gives_each_change_once_in_order(
    graph_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    me = creds.client_id
    names = [f"n{i}" for i in range(8)]
    with authed_client(graph_api, creds) as http:
        with open_graph(http) as r:
            write(services, me, *(node("created", n) for n in names[:4]))
            first, _ = read_events(r, until=lambda ev: len(ev) >= 2)
        # Changes go on while no stream is open (and others after the next one opens).
        write(services, me, *(node("updated", n) for n in names[4:6]))
        last = str(first[-1].id)
        wait_until(
            lambda: len(graph_events_after(services.sessions, client_id=me, after=int(last))) >= 4,
            "the changes written while away to be published",
        )
        with open_graph(http, **{"Last-Event-ID": f"evt_{last}"}) as r:
            write(services, me, *(node("deleted", n) for n in names[6:]))
            rest, _ = read_events(r, until=lambda ev: len(ev) >= 6)
    got = first + rest
    assert ids_of(got) == names
    assert [e.data["data"]["change_type"] for e in got] == ["created"] * 4 + ["updated"] * 2 + [
        "deleted"
    ] * 2
    positions = [e.id for e in got]
    assert positions == sorted(set(positions)), "duplicates or out of order"
    stored = graph_events_after(services.sessions, client_id=me, after=0)
    assert [body for _, body in stored] == [e.data for e in got]


def test_a_clients_graph_stream_never_sees_another_clients_changes(
    graph_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    alice, bob = make_client(), make_client()
    write(services, alice.client_id, node("created", "a_before"))
    # The whole history first (replay), then live changes of both clients.
    with authed_client(graph_api, bob) as http, open_graph(http, {"from": "start"}) as r:
        write(services, alice.client_id, node("created", "a_live"))
        write(services, bob.client_id, node("created", "b_live"))
        seen, _ = read_events(r, until=lambda ev: ev[-1].data["data"]["entity_id"] == "b_live")
    assert ids_of(seen) == ["b_live"]
    bobs = graph_events_after(services.sessions, client_id=bob.client_id, after=0)
    assert [body["data"]["entity_id"] for _, body in bobs] == ["b_live"]


def test_task_streams_show_no_graph_changes(
    graph_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    me = creds.client_id
    write(services, me, node("created", "before_task"))
    task: dict[str, str] = {}
    with authed_client(graph_api, creds) as http:
        seen: dict[str, list[Event]] = {}
        opened = threading.Barrier(3, timeout=20)

        def follow(name: str, path: str, params: dict[str, str]) -> None:
            with (
                authed_client(graph_api, creds) as own,
                own.stream("GET", path, params=params) as r,
            ):
                opened.wait()
                seen[name], _ = read_events(
                    r, until=lambda ev: ev[-1].data["data"].get("task_id") == task.get("id")
                )

        readers = [
            threading.Thread(target=follow, args=("live", "/tasks/stream", {})),
            threading.Thread(target=follow, args=("replayed", "/tasks/stream", {"from": "start"})),
        ]
        for reader in readers:
            reader.start()
        opened.wait()
        # A graph change an agent of a task wrote names that task; still not a task event.
        write(services, me, node("created", "while_open"), source="agent")
        submitted = http.post(
            "/tasks/orchestrate",
            json={"task_type": "custom", "description": "graph stream test",
                  "workflow": {"only": {"agent": "test_noop", "dependencies": []}}},
        )  # fmt: skip
        assert submitted.status_code == 200, submitted.text
        task["id"] = submitted.json()["task_id"]
        for reader in readers:
            reader.join(30)
            assert not reader.is_alive()
        with http.stream("GET", f"/tasks/{task['id']}/events") as r:
            own, _ = read_events(r, until=lambda ev: ev[-1].type == "task.accepted")
        http.post(f"/tasks/{task['id']}/cancel")  # no worker runs it; leave nothing queued
    for name, events in [*seen.items(), ("task", own)]:
        assert events, name
        assert not [e for e in events if e.type.startswith("knowledge_graph.")], name
        assert {e.data["data"]["task_id"] for e in events} == {task["id"]}, name
    stored = events_after(services.sessions, client_id=me, after=0)
    assert stored and not [b for _, b in stored if b["event_type"].startswith("knowledge_graph")]
    assert len(graph_events_after(services.sessions, client_id=me, after=0)) == 2


def test_a_webhook_subscribed_to_created_receives_a_signed_delivery(
    graph_api: LiveApi, receiver: Receiver, services: Services
) -> None:
    client_id = f"graph-hooks-{id(receiver)}"
    settings = services.settings.model_copy(update={"webhook_allow": [receiver.allow]})
    body = registry.WebhookCreate(
        webhook_url=receiver.url, events=["knowledge_graph.created"], secret=SECRET
    )
    hook = registry.register(services.sessions, body, client_id=client_id, settings=settings)
    write(services, client_id, node("created", "c1"), node("updated", "c1"))
    write(services, client_id, Change("relationship_added", "c1", "customer", PURCHASE))
    write(services, client_id, node("created", "p1", "product"))
    # The receiver serves this test alone: every delivery it gets is this endpoint's.
    wait_until(lambda: len(receiver.deliveries) >= 2, "two deliveries of knowledge_graph.created")
    got = list(receiver.deliveries)
    assert all(d.verified for d in got)  # the guide's X-AIA-Signature check
    verifier = standardwebhooks.Webhook(standard_webhooks_secret(SECRET))
    for delivery in got:
        verifier.verify(delivery.body, delivery.headers)
    stored = {b["event_id"]: b for _, b in graph_events_after(
        services.sessions, client_id=client_id, after=0
    )}  # fmt: skip
    assert [d.json["data"]["entity_id"] for d in got] == ["c1", "p1"]
    for delivery in got:
        assert delivery.json == stored[delivery.json["event_id"]]  # the stream's body, too
        assert delivery.json["event_type"] == "knowledge_graph.created"
    with services.sessions.begin() as session:
        types = session.execute(
            text("SELECT event_type, status FROM webhook_deliveries WHERE webhook_id = :w"),
            {"w": hook["webhook_id"]},
        ).all()
    assert sorted(types) == [("knowledge_graph.created", "delivered")] * 2
