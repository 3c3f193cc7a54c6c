"""Server-sent event streams against a live API, the real event pump, PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from aia_engine.events.pump import EventPump
from aia_engine.events.replay import events_after
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import Services

pytestmark = pytest.mark.timeout(120)


@dataclass
class Event:
    id: int
    type: str
    data: dict[str, Any]


@pytest.fixture(scope="module")
def stream_api(services: Services, worker: Any) -> Iterator[LiveApi]:
    """A live API whose streams beat every second, capped at 3 per client, and whose request
    timeout (2 s) is shorter than a stream lives; plus the event pump."""
    settings = services.settings.model_copy(
        update={"sse_heartbeat_s": 1.0, "sse_max_streams_per_client": 3, "request_timeout_s": 2.0}
    )
    app = create_app(settings)
    server, thread, url = serve(app)
    pump_redis = redis.Redis.from_url(services.redis_url)
    pump = EventPump(services.sessions, pump_redis, lambda _ids: None)
    pump_thread, stop = pump.start()
    yield LiveApi(url, app, server)
    stop.set()
    pump_thread.join(10)
    pump_redis.close()
    server.should_exit = True
    thread.join(10)


def authed_client(api: LiveApi, creds: Credentials) -> httpx.Client:
    return api.client(headers={"Authorization": f"Bearer {token_for(api, creds)}"})


def read_events(
    response: httpx.Response, *, until: Callable[[list[Event]], bool], timeout: float = 30
) -> tuple[list[Event], list[str]]:
    """Events (and comment lines) from an open stream until `until(events)` or the stream ends."""
    events: list[Event] = []
    comments: list[str] = []
    fields: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"stream too slow: {events}"
        if line.startswith(":"):
            comments.append(line)
        elif line == "":
            if "data" in fields:
                events.append(Event(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                if until(events):
                    break
            fields = {}
        else:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
    return events, comments


def chain(n: int, sleep_s: float) -> dict[str, Any]:
    stages = {
        f"s{i}": {
            "agent": "test_noop",
            "dependencies": [f"s{i - 1}"] if i else [],
            "params": {"sleep_s": sleep_s},
        }
        for i in range(n)
    }
    return {"task_type": "custom", "description": "stream test", "workflow": stages}


def submit(http: httpx.Client, body: dict[str, Any]) -> str:
    r = http.post("/tasks/orchestrate", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["task_id"])


def test_reconnecting_with_last_event_id_gives_every_event_once_in_order(
    stream_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    with authed_client(stream_api, make_client()) as http:
        task_id = submit(http, chain(5, 0.4))
        with http.stream("GET", f"/tasks/{task_id}/events") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            first, _ = read_events(r, until=lambda ev: len(ev) >= 4)
        last = first[-1].id
        # Events go on while we are away: wait until two more are published.
        wait_until(
            lambda: published_after(services, task_id, last) >= 2,
            "two more events published while no stream was open",
        )
        with http.stream(
            "GET", f"/tasks/{task_id}/events", headers={"Last-Event-ID": str(last)}
        ) as r:
            rest, _ = read_events(r, until=lambda ev: False)  # ends with the task
    got = first + rest
    assert got[-1].type == "task.completed" and got[-1].data["data"]["results"]
    ids = [e.id for e in got]
    assert ids == sorted(set(ids)), "duplicates or out of order"
    seqs = [e.data["sequence"] for e in got]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # nothing missed
    with services.sessions.begin() as session:
        client_id = session.execute(
            __import__("sqlalchemy").text("SELECT client_id FROM tasks WHERE id = :t"),
            {"t": task_id},
        ).scalar_one()
    stored = events_after(services.sessions, client_id=client_id, after=0, task_id=task_id)
    assert [pos for pos, _ in stored] == ids
    assert all(e.data["event_id"] == f"evt_{e.id}" for e in got)


def test_a_stream_opens_with_its_position_so_a_cut_before_any_event_loses_nothing(
    stream_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    """The first block is `retry:` and `id:` (no data): the position a `now` stream starts
    after. Resuming from it (Last-Event-ID) gives every event that happened after the open,
    although the first connection was closed before it saw any of them."""
    with authed_client(stream_api, make_client()) as http:
        with http.stream("GET", "/tasks/stream") as r:
            head: dict[str, str] = {}
            for line in r.iter_lines():
                if line == "":
                    break
                key, _, value = line.partition(":")
                head[key] = value.strip()
        assert set(head) == {"retry", "id"}, head
        task_id = submit(http, chain(1, 0))
        with http.stream("GET", "/tasks/stream", headers={"Last-Event-ID": head["id"]}) as r:
            events, _ = read_events(r, until=lambda ev: ev[-1].type == "task.completed")
    assert events[0].type == "task.accepted" and events[0].id > int(head["id"])
    assert {e.data["data"]["task_id"] for e in events} == {task_id}


def test_client_stream_carries_only_the_callers_tasks(
    stream_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    alice, bob = make_client(), make_client()
    with authed_client(stream_api, alice) as a, authed_client(stream_api, bob) as b:
        seen: list[Event] = []
        mine: list[str] = []
        subscribed = threading.Event()

        def follow() -> None:
            with a.stream("GET", "/tasks/stream") as r:
                subscribed.set()
                events, _ = read_events(
                    r,
                    until=lambda ev: sum(e.type == "task.completed" for e in ev) >= 2,
                )
                seen.extend(events)

        reader = threading.Thread(target=follow)
        reader.start()
        # The stream starts "now" when its answer begins: only then may the tasks start.
        assert subscribed.wait(10), "the stream did not open"
        theirs = [submit(b, chain(1, 0)) for _ in range(2)]
        mine.extend(submit(a, chain(2, 0)) for _ in range(2))
        reader.join(30)
        assert not reader.is_alive()
        tasks = {e.data["data"]["task_id"] for e in seen}
        assert tasks == set(mine) and not tasks & set(theirs)
        for task_id in theirs:
            r = a.get(f"/tasks/{task_id}/events")
            assert r.status_code == 404 and r.json()["error"]["code"] == "E004"


def test_streams_outlive_the_request_timeout_and_send_heartbeats(
    stream_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    with authed_client(stream_api, make_client()) as http:
        task_id = submit(http, chain(1, 0))
        started = time.monotonic()
        with http.stream("GET", "/tasks/stream") as r:
            assert r.status_code == 200
            events, comments = [], []
            for line in r.iter_lines():
                if line.startswith(":"):
                    comments.append(line)
                if time.monotonic() - started > 3.5:
                    break
        assert len(comments) >= 2  # a beat a second, and the 2 s request timeout did not cut it
        del events, task_id


def test_open_streams_are_capped_per_client(
    stream_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    clients = [authed_client(stream_api, creds) for _ in range(4)]
    with contextlib.ExitStack() as stack:
        for c in clients:
            stack.enter_context(c)
        first = stack.enter_context(contextlib.ExitStack())
        opened = [first.enter_context(clients[0].stream("GET", "/tasks/stream"))]
        opened += [stack.enter_context(c.stream("GET", "/tasks/stream")) for c in clients[1:3]]
        assert all(r.status_code == 200 for r in opened)
        refused = clients[3].get("/tasks/stream")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "E012" and refused.headers["Retry-After"]
        first.close()  # one stream ends

        def reopened() -> bool:  # the server notices the disconnect and frees the slot
            with clients[3].stream("GET", "/tasks/stream") as again:
                return again.status_code == 200

        wait_until(reopened, "the slot freed after a stream closed", timeout=10, interval=0.2)


def test_bad_last_event_id_and_unknown_tasks(
    stream_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    with authed_client(stream_api, make_client()) as http:
        r = http.get("/tasks/stream", headers={"Last-Event-ID": "yesterday"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "Last-Event-ID"
        r = http.get("/tasks/task_doesnotexist/events")
        assert r.status_code == 404 and r.json()["error"]["code"] == "E004"
    assert httpx.get(stream_api.url + "/tasks/stream").status_code == 401


def wait_published(services: Services, task_id: str, timeout: float = 30) -> None:
    """Until the pump has published every event of a finished task."""
    from sqlalchemy import text

    def done() -> bool:
        with services.sessions.begin() as session:
            row = session.execute(
                text(
                    "SELECT t.status, count(*) FILTER (WHERE e.pos IS NULL) AS unpublished"
                    "  FROM tasks t JOIN task_events e ON e.task_id = t.id"
                    " WHERE t.id = :t GROUP BY t.status"
                ),
                {"t": task_id},
            ).one()
        return bool(row.status == "completed" and row.unpublished == 0)

    wait_until(done, f"every event of {task_id} published", timeout=timeout)


def published_after(services: Services, task_id: str, position: int) -> int:
    """How many of the task's events the pump has published past stream position `position`."""
    from sqlalchemy import text

    with services.sessions.begin() as session:
        return int(
            session.execute(
                text("SELECT count(*) FROM task_events WHERE task_id = :t AND pos > :p"),
                {"t": task_id, "p": position},
            ).scalar_one()
        )


def test_client_stream_starts_now_and_gives_history_only_when_asked(
    stream_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    with authed_client(stream_api, make_client()) as http:
        old = submit(http, chain(2, 0))
        wait_published(services, old)
        # A new stream without Last-Event-ID starts at "now": only what happens from here on.
        with http.stream("GET", "/tasks/stream") as r:
            assert r.status_code == 200
            new = submit(http, chain(1, 0))
            live, _ = read_events(r, until=lambda ev: ev[-1].type == "task.completed")
        assert {e.data["data"]["task_id"] for e in live} == {new}, [e.type for e in live]
        assert live[0].type == "task.accepted" and live[-1].data["data"]["task_id"] == new
        wait_published(services, new)
        # History is asked for explicitly: ?from=start replays every event from the first.
        with http.stream("GET", "/tasks/stream", params={"from": "start"}) as r:
            history, _ = read_events(
                r, until=lambda ev: sum(e.type == "task.completed" for e in ev) == 2
            )
        assert [e.data["data"]["task_id"] for e in history if e.type == "task.completed"] == [
            old,
            new,
        ]
        assert history[0].type == "task.accepted" and history[0].data["data"]["task_id"] == old
        # ... or from a known position with Last-Event-ID (which wins over `from`).
        after = history[0].id
        with http.stream(
            "GET", "/tasks/stream", params={"from": "now"}, headers={"Last-Event-ID": str(after)}
        ) as r:
            resumed, _ = read_events(
                r, until=lambda ev: sum(e.type == "task.completed" for e in ev) == 2
            )
        assert [e.id for e in resumed] == [e.id for e in history[1:]]
        # A task's own stream replays that one task's history (bounded, and it ends with the
        # task's final event, so a stream opened after the end still ends).
        with http.stream("GET", f"/tasks/{old}/events") as r:
            own, _ = read_events(r, until=lambda ev: False)
        assert own[0].type == "task.accepted" and own[-1].type == "task.completed"
        assert {e.data["data"]["task_id"] for e in own} == {old}
        r = http.get("/tasks/stream", params={"from": "yesterday"})
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "from"
