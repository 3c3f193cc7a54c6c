"""The cutting proxy (tests/integration/sdk/proxy.py) with plain httpx against the live API:
a cut submission is committed by the server while the client sees a dropped connection; other
requests pass, several on one kept-alive connection; chunked request bodies are refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from aia_engine.db.models import Task
from tests.integration.api.conftest import Credentials, LiveApi, token_for
from tests.integration.conftest import Services
from tests.integration.sdk.proxy import CuttingProxy


@pytest.fixture
def proxy(live_api: LiveApi) -> Iterator[CuttingProxy]:
    with CuttingProxy(live_api.url) as running:
        yield running
    assert running.errors == []


def through(proxy: CuttingProxy, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=proxy.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def tasks_described(services: Services, client_id: str, description: str) -> list[str]:
    with services.sessions.begin() as session:
        rows = session.execute(
            select(Task.id).where(Task.client_id == client_id, Task.description == description)
        ).all()
    return [str(r.id) for r in rows]


def test_a_cut_submission_is_committed_but_its_answer_never_arrives(
    proxy: CuttingProxy,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    services: Services,
) -> None:
    creds = make_client()
    description = f"cut {uuid.uuid4()}"
    body = {"task_type": "noop", "description": description}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    proxy.cut_response("POST", "/tasks/submit", times=1)
    with through(proxy, token_for(live_api, creds)) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.post("/tasks/submit", json=body, headers=key)
        assert proxy.armed() == 0
        assert proxy.cut[("POST", "/tasks/submit")] == 1
        created = tasks_described(services, creds.client_id, description)
        assert len(created) == 1, "the server did not commit the cut submission"
        listed = http.get("/tasks", params={"limit": 100})
        assert listed.status_code == 200
        assert created[0] in listed.text
        # The retry a client makes (same key) passes and finds the same task.
        again = http.post("/tasks/submit", json=body, headers=key)
        assert again.status_code == 200, again.text
        assert again.json()["task_id"] == created[0]
    assert tasks_described(services, creds.client_id, description) == created
    assert proxy.seen[("POST", "/tasks/submit")] == 2
    assert proxy.cut[("POST", "/tasks/submit")] == 1


def test_only_the_armed_request_is_cut(
    proxy: CuttingProxy, live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())
    proxy.cut_response("GET", "/tasks/00000000-0000-0000-0000-000000000000", times=2)
    with through(proxy, token) as http:
        assert http.get("/tasks", params={"limit": 1}).status_code == 200
        for _ in range(2):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                http.get("/tasks/00000000-0000-0000-0000-000000000000")
        assert http.get("/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert proxy.seen[("GET", "/tasks/00000000-0000-0000-0000-000000000000")] == 3


def test_requests_share_one_kept_alive_connection_and_answers_pass_unchanged(
    proxy: CuttingProxy, live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())
    with httpx.Client(base_url=live_api.url, timeout=30) as direct:
        document = direct.get("/openapi.json").content
    assert len(document) > 64 * 1024, "a large answer (several reads) is part of the check"
    with through(proxy, token) as http:
        for _ in range(3):
            r = http.get("/openapi.json")
            assert r.status_code == 200 and r.content == document
            assert http.get("/health/live").status_code == 200
            submitted = http.post("/tasks/submit", json={"task_type": "noop"})
            assert submitted.status_code == 200, submitted.text
            assert http.get(f"/tasks/{submitted.json()['task_id']}").status_code == 200
    assert proxy.connections == 1
    assert proxy.seen[("GET", "/openapi.json")] == 3
    assert proxy.seen[("POST", "/tasks/submit")] == 3


def test_a_chunked_request_body_is_refused_clearly(
    proxy: CuttingProxy, live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())

    def body() -> Iterator[bytes]:
        yield b'{"task_type": "noop"}'

    with through(proxy, token) as http:
        r = http.post("/tasks/submit", content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 501
    assert "chunked request bodies" in r.text
    assert proxy.errors == ["POST /tasks/submit: chunked request body refused"]
    proxy.errors.clear()
