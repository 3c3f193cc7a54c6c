"""The restartable API process (tests/integration/sdk/api_process.py) with plain httpx: a kill -9
cuts an open event stream; the API comes back on the same port; reconnecting with
Last-Event-ID gets every later event once, in order (tasks submitted before and after the
restart, a real worker and the event pump). Also: an event stream passes through the cutting
proxy unchanged."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aia_engine.events.replay import events_after
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import Services
from tests.integration.sdk.api_process import ApiProcess
from tests.integration.sdk.proxy import CuttingProxy

pytestmark = pytest.mark.timeout(90)
FINAL = ("task.completed", "task.failed", "task.cancelled")


@dataclass
class Event:
    id: str
    type: str
    body: dict[str, Any]


def sse(response: httpx.Response) -> Iterator[Event | None]:
    """The events of a text/event-stream answer; None for a block without data (the stream's
    opening position, a keep-alive comment), so a reader can check its condition each beat."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield Event(
                    fields.get("id", ""), fields.get("event", ""), json.loads(fields["data"])
                )
            else:
                yield None
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.removeprefix(" ")


@contextlib.contextmanager
def stream(url: str, bearer: str, **headers: str) -> Iterator[httpx.Response]:
    """GET /tasks/stream, open (status 200) until the block ends."""
    headers["Authorization"] = f"Bearer {bearer}"
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=10), headers=headers) as http,
        http.stream("GET", "/tasks/stream") as response,
    ):
        assert response.status_code == 200
        yield response


def token(url: str, creds: Credentials) -> str:
    r = httpx.post(f"{url}/auth/token", data=creds.form(grant_type="client_credentials"))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def orchestrate(url: str, bearer: str, stages: int, sleep_s: float) -> str:
    workflow = {
        f"s{i}": {
            "agent": "test_noop",
            "dependencies": [f"s{i - 1}"] if i else [],
            "params": {"sleep_s": sleep_s},
        }
        for i in range(stages)
    }
    r = httpx.post(
        f"{url}/tasks/orchestrate",
        json={"task_type": "custom", "description": "harness", "workflow": workflow},
        headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["task_id"])


def stored(services: Services, client_id: str) -> list[str]:
    return [b["event_id"] for _, b in events_after(services.sessions, client_id=client_id, after=0)]


def test_a_kill_9_cuts_the_stream_and_last_event_id_resumes_it_once_in_order(
    api_process: ApiProcess, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    url = api_process.url
    bearer = token(url, creds)
    got: list[Event] = []
    with stream(url, bearer) as response:
        events = sse(response)
        assert next(events) is None  # the opening position, before any task
        first = orchestrate(url, bearer, stages=6, sleep_s=0.4)
        for event in events:
            if event is not None:
                got.append(event)
            if len(got) == 3:
                break
        pid = api_process.pid
        api_process.restart()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for _ in events:
                pass
    published_when_back = len(stored(services, creds.client_id))
    assert api_process.pid != pid and api_process.url == url
    second = orchestrate(url, bearer, stages=2, sleep_s=0.1)

    ended: set[str] = set()
    with stream(url, bearer, **{"Last-Event-ID": got[-1].id}) as response:
        for event in sse(response):
            if event is not None:
                got.append(event)
                if event.type in FINAL:
                    ended.add(event.body["data"]["task_id"])
            if ended == {first, second}:
                break
    assert published_when_back > 3, "nothing was published while the API was away"
    ids = [e.body["event_id"] for e in got]
    assert ids == stored(services, creds.client_id), "an event missed, repeated or out of order"
    assert [e.id for e in got] == [i.removeprefix("evt_") for i in ids]


def test_an_event_stream_passes_through_the_proxy(
    api_process: ApiProcess, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    bearer = token(api_process.url, creds)
    got: list[Event] = []
    with CuttingProxy(api_process.url) as proxy:
        with stream(proxy.url, bearer) as response:
            events = sse(response)
            assert next(events) is None
            task_id = orchestrate(proxy.url, bearer, stages=2, sleep_s=0.1)
            for event in events:
                if event is not None:
                    got.append(event)
                    if event.type in FINAL:
                        break
        assert proxy.errors == []
    assert got[-1].body["data"]["task_id"] == task_id
    assert got[-1].type == "task.completed"
    assert [e.body["event_id"] for e in got] == stored(services, creds.client_id)
