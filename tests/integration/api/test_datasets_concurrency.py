"""Dataset uploads cannot tie up the API: upload slots per process (503) and per client (429),
a stalled body (408) or the upload timeout (504) stops the upload's thread and stores nothing,
writers of one name never wait for each other (409 at once), a delete answers at once and the
rows go in the background; a worker's handle is the real StoredDataset, capped for list
agents and refusing a dataset replaced after it was opened."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from aia_engine.agents import get_agent
from aia_engine.agents.base import AgentContext
from aia_engine.datasets.store import add_dataset, delete_dataset, open_dataset
from aia_engine.db.models import Dataset, DatasetRow
from aia_engine.errors import AgentError, DatasetTooLargeForAgent
from api.app import create_app
from api.deps import Resources
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import Services

BODY = "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(2000))


@contextmanager
def api_with(services: Services, **update: Any) -> Iterator[LiveApi]:
    app = create_app(services.settings.model_copy(update=update))
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def upload_api(services: Services) -> Iterator[LiveApi]:
    """A 1.5 s pause in a body ends an upload; so do 4 s in all."""
    with api_with(services, dataset_upload_idle_s=1.5, dataset_upload_timeout_s=4.0) as api:
        yield api


@pytest.fixture(scope="module")
def lock_api(services: Services) -> Iterator[LiveApi]:
    """Two uploads per process, two per client, patient with a paused body."""
    with api_with(
        services,
        dataset_upload_concurrency=2,
        dataset_upload_per_client=2,
        dataset_upload_idle_s=60.0,
        dataset_upload_timeout_s=120.0,
    ) as api:
        yield api


def running(api: LiveApi) -> int:
    res: Resources = api.app.state.resources
    return res.dataset_uploads.running


@contextmanager
def held_upload(api: LiveApi, token: str, name: str, **params: str) -> Iterator[socket.socket]:
    """An upload that sent its head and part of its body, and then waits (the socket open)."""
    where = urlsplit(api.url)
    query = "&".join(f"{k}={v}" for k, v in {"name": name, **params}.items())
    before = running(api)
    raw = socket.create_connection((where.hostname, where.port))
    try:
        raw.sendall(
            (
                f"POST /datasets?{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: text/csv\r\nContent-Length: {len(BODY) * 2}\r\n\r\n{BODY}"
            ).encode()
        )
        wait_until(lambda: running(api) > before, "the upload to take its slot", timeout=10)
        yield raw
    finally:
        raw.close()


def answer(raw: socket.socket, timeout: float = 15) -> str:
    raw.settimeout(timeout)
    got = b""
    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
        part = raw.recv(65536)
        if not part:
            break
        got += part
    return got.decode()


def rows_named(services: Services, name: str) -> int:
    with services.sessions.begin() as session:
        ids = session.scalars(select(Dataset.id).where(Dataset.name == name)).all()
        return int(
            session.scalar(
                select(func.count()).select_from(DatasetRow).where(DatasetRow.dataset_id.in_(ids))
            )
            or 0
        )


def test_a_stalled_body_answers_408_stores_nothing_and_frees_its_slot(
    services: Services, upload_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(upload_api, make_client())
    with held_upload(upload_api, token, "stalled") as raw:
        began = time.monotonic()
        reply = answer(raw)
    assert reply.startswith("HTTP/1.1 408"), reply[:300]
    assert '"code":"E408"' in reply and "AIA_DATASET_UPLOAD_IDLE_S" in reply
    assert time.monotonic() - began < 10
    wait_until(lambda: running(upload_api) == 0, "the stalled upload's thread to end", timeout=10)
    assert rows_named(services, "stalled") == 0


def test_the_upload_timeout_stops_the_uploads_thread(
    services: Services, upload_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(upload_api, make_client())
    with held_upload(upload_api, token, "slow") as raw:
        # A byte every half second: never idle, but past the 4 s upload timeout.
        for _ in range(12):
            time.sleep(0.5)
            try:
                raw.sendall(b"9")
            except OSError:
                break
            if running(upload_api) == 0:
                break
        # Without the stop, the thread would wait for the rest of the body as long as bytes
        # keep coming; it ends instead, having rolled back.
        wait_until(lambda: running(upload_api) == 0, "the timed-out upload to stop", timeout=5)
        assert answer(raw).startswith("HTTP/1.1 504")
    assert rows_named(services, "slow") == 0


def test_writers_of_one_name_answer_409_at_once_and_slots_429_and_503(
    services: Services, lock_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    upload_api = lock_api
    a, c = token_for(upload_api, make_client()), token_for(upload_api, make_client())
    auth = {"content-type": "text/csv"}
    with (
        upload_api.client(headers={"Authorization": f"Bearer {a}"}) as http_a,
        upload_api.client(headers={"Authorization": f"Bearer {c}"}) as http_c,
    ):
        assert http_a.post("/datasets", params={"name": "kept"}, content=BODY, headers=auth)
        with held_upload(upload_api, a, "kept", replace="true"):
            began = time.monotonic()
            for method, params in (("POST", {"replace": "true"}), ("DELETE", None)):
                if method == "POST":
                    r = http_a.post(
                        "/datasets", params={"name": "kept", **params}, content=BODY, headers=auth
                    )
                else:
                    r = http_a.delete("/datasets/kept")
                assert r.status_code == 409, r.text
                assert "upload in progress" in r.json()["error"]["message"]
            with held_upload(upload_api, a, "fresh"):
                # Alice holds two of two uploads: hers 429, and the process's 503 for Carol.
                r = http_a.post("/datasets", params={"name": "third"}, content=BODY, headers=auth)
                assert r.status_code == 429 and r.json()["error"]["code"] == "E429", r.text
                assert r.headers["retry-after"]
                r = http_c.post("/datasets", params={"name": "other"}, content=BODY, headers=auth)
                assert r.status_code == 503 and r.headers["retry-after"], r.text
                # Reads never wait behind uploads.
                assert http_c.get("/datasets").status_code == 200
            assert time.monotonic() - began < 10  # none of them waited for a lock
        wait_until(lambda: running(upload_api) == 0, "the cut uploads to end", timeout=15)
        with held_upload(upload_api, a, "same"):
            # The same new name from a second upload of the same owner: 409 at once.
            r = http_a.post("/datasets", params={"name": "same"}, content=BODY, headers=auth)
            assert r.status_code == 409 and "upload in progress" in r.text, r.text
    wait_until(lambda: running(upload_api) == 0, "every upload to end", timeout=15)
    assert rows_named(services, "kept") == 2000  # the held replace stored nothing


def test_replace_true_on_a_shared_name_is_refused_as_read_only(
    services: Services, authed: Callable[..., httpx.Client]
) -> None:
    add_dataset(services.sessions, "shared_rows", [{"v": 1}], settings=services.settings)
    with authed() as http:
        r = http.post(
            "/datasets",
            params={"name": "shared_rows", "replace": "true"},
            content=BODY,
            headers={"content-type": "text/csv"},
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "E066", r.text
        assert http.get("/datasets/shared_rows").json()["shared"] is True
    assert rows_named(services, "shared_rows") == 1
    delete_dataset(services.sessions, "shared_rows")  # other tests expect no shared ones


@pytest.mark.timeout(120)
def test_delete_answers_at_once_and_purges_the_rows_in_the_background(
    services: Services, authed: Callable[..., httpx.Client], make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    records = ({"i": i, "s": "x" * 20} for i in range(400_000))
    made = add_dataset(
        services.sessions, "huge", records, settings=services.settings, client_id=creds.client_id
    )
    with services.sessions.begin() as session:
        old_id = session.scalar(select(Dataset.id).where(Dataset.public_id == made["id"]))
    with authed(creds=creds) as http:
        began = time.monotonic()
        r = http.delete(f"/datasets/{made['id']}")
        took = time.monotonic() - began
        assert r.status_code == 204, r.text
        assert took < 5, took  # one UPDATE, not 400,000 rows deleted in the request
        assert http.get(f"/datasets/{made['id']}").status_code == 404
        assert http.get("/datasets/huge").status_code == 404
        assert "huge" not in [d["name"] for d in http.get("/datasets").json()["datasets"]]
        again = http.post(
            "/datasets", params={"name": "huge"}, content=BODY, headers={"content-type": "text/csv"}
        )
        assert again.status_code == 201, again.text  # the name is free at once

    def purged() -> bool:
        with services.sessions.begin() as session:
            left = session.scalar(
                select(func.count()).select_from(DatasetRow).where(DatasetRow.dataset_id == old_id)
            )
            return not left and session.get(Dataset, old_id) is None

    wait_until(purged, "the deleted dataset's rows to be purged", timeout=90)


def test_agents_get_the_real_stored_dataset_capped_and_checked(
    services: Services, make_client: Callable[..., Credentials]
) -> None:
    owner = make_client().client_id
    rows = [{"segment": "ab"[i % 2], "period": f"p{i % 3}", "revenue": i} for i in range(150)]
    add_dataset(services.sessions, "real", rows, settings=services.settings, client_id=owner)

    def run(agent: str) -> dict[str, Any]:
        handle = open_dataset(services.sessions, "real", client_id=owner, max_rows=100)
        context = AgentContext(
            task_id="task_t",
            stage="s",
            task="",
            inputs={},
            params={},
            requirements={"data_source": "real"},
        )
        context.datasets = lambda name: handle
        return get_agent(agent).run(context)

    out = run("data_analysis_agent")
    assert out["record_count"] == 150 and out["statistics"]["revenue"]["median"] == 74.5
    with pytest.raises(DatasetTooLargeForAgent) as refused:
        run("market_research_agent")
    assert refused.value.code == "E067" and refused.value.details["limit"] == 100

    # Opened, then replaced before its rows are read: the agent is refused, not misled.
    handle = open_dataset(services.sessions, "real", client_id=owner, max_rows=1000)
    assert handle is not None
    add_dataset(
        services.sessions, "real", rows[:10], settings=services.settings, client_id=owner,
        replace=True,
    )  # fmt: skip
    with pytest.raises(AgentError, match="replaced after the stage opened it"):
        list(handle)
    fresh = open_dataset(services.sessions, "real", client_id=owner, max_rows=1000)
    assert fresh is not None and len(list(fresh)) == 10
