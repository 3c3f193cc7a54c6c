"""A submission whose answer is lost (the server committed, the connection dropped: the cutting
proxy) is retried by the SDK with the same Idempotency-Key and creates exactly one task, with
the async and the sync client alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from aia_client import AIAClient, AIASyncClient
from sqlalchemy import select

from aia_engine.db.models import Task
from tests.integration.api.conftest import Credentials, LiveApi
from tests.integration.conftest import Services
from tests.integration.sdk.proxy import CuttingProxy

SUBMIT = ("POST", "/tasks/submit")


@pytest.fixture
def proxy(live_api: LiveApi) -> Iterator[CuttingProxy]:
    with CuttingProxy(live_api.url) as running:
        yield running
    assert running.errors == []


def tasks_described(services: Services, client_id: str, description: str) -> list[str]:
    with services.sessions.begin() as session:
        found = session.scalars(
            select(Task.id).where(Task.client_id == client_id, Task.description == description)
        ).all()
    return [str(i) for i in found]


def test_the_async_client_retries_a_cut_submission_into_one_task(
    proxy: CuttingProxy, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    description = f"cut async {uuid.uuid4()}"

    async def submit() -> str:
        async with AIAClient(creds.client_id, creds.client_secret, base_url=proxy.url) as client:
            task = await client.tasks.submit(task_type="noop", description=description)
        return str(task.task_id)

    proxy.cut_response(*SUBMIT, times=2)
    task_id = asyncio.run(submit())
    assert proxy.cut[SUBMIT] == 2 and proxy.seen[SUBMIT] == 3
    assert tasks_described(services, creds.client_id, description) == [task_id]


def test_the_sync_client_retries_a_cut_submission_into_one_task(
    proxy: CuttingProxy, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    description = f"cut sync {uuid.uuid4()}"
    proxy.cut_response(*SUBMIT, times=1)
    with AIASyncClient(creds.client_id, creds.client_secret, base_url=proxy.url) as client:
        task = client.tasks.submit(task_type="noop", description=description)
    assert proxy.cut[SUBMIT] == 1 and proxy.seen[SUBMIT] == 2
    assert tasks_described(services, creds.client_id, description) == [str(task.task_id)]


def test_submit_many_retries_a_cut_chunk_without_creating_its_tasks_twice(
    proxy: CuttingProxy, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    description = f"cut batch {uuid.uuid4()}"
    batch = ("POST", "/tasks/batch-submit")
    proxy.cut_response(*batch, times=1)
    with AIASyncClient(creds.client_id, creds.client_secret, base_url=proxy.url) as client:
        results = client.tasks.submit_many(
            [{"task_type": "noop", "description": description}] * 30, chunk_size=10
        )
    assert proxy.cut[batch] == 1 and proxy.seen[batch] == 4  # three chunks, one sent twice
    ids = {str(r.task_id) for r in results}
    assert len(ids) == 30
    assert sorted(tasks_described(services, creds.client_id, description)) == sorted(ids)


def test_requests_share_one_kept_alive_connection(
    proxy: CuttingProxy, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    with AIASyncClient(creds.client_id, creds.client_secret, base_url=proxy.url) as client:
        for _ in range(20):
            client.health.live()
            list(client.tasks.list())
    assert proxy.connections == 1  # the token request and 40 more, on one connection
