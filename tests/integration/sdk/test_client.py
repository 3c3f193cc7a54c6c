"""The SDK's clients against the live API and a worker: one suite, run for `AIAClient` (async)
and `AIASyncClient` alike.

Each test is written once against the blocking surface; for the async client, `Blocking` runs
every coroutine to its end on one event loop in a thread and turns async iterators into lists,
so both clients answer the same calls with the same assertions.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aia_client import (
    AIAAuthenticationError,
    AIAClient,
    AIAConflictError,
    AIANotFoundError,
    AIARateLimitError,
    AIASyncClient,
    AIATimeoutError,
    AIAValidationError,
)

from aia_engine.tiers import TierLimits
from api.app import create_app
from tests.integration.api.conftest import Credentials, LiveApi, serve
from tests.integration.conftest import Services

PLAIN = (str, int, float, bool, bytes, dict, list, tuple, type(None))


class Blocking:
    """An async SDK object seen through blocking calls (coroutines run on `loop`)."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def _run(self, awaitable: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result(60)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, PLAIN):
            return value
        if not callable(value):
            return Blocking(value, self._loop)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._run(result)
            if inspect.isasyncgen(result):

                async def collect() -> list[Any]:
                    return [item async for item in result]

                return iter(self._run(collect()))
            return result

        return call


@pytest.fixture(params=["async", "sync"])
def connect(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """`connect(creds, url, **options)`: an SDK client of the kind the test runs with."""
    opened: list[Callable[[], None]] = []
    if request.param == "sync":

        def sync(creds: Credentials, url: str, **options: Any) -> Any:
            client = AIASyncClient(creds.client_id, creds.client_secret, base_url=url, **options)
            opened.append(client.close)
            return client

        yield sync
    else:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def async_(creds: Credentials, url: str, **options: Any) -> Any:
            client = AIAClient(creds.client_id, creds.client_secret, base_url=url, **options)
            blocking = Blocking(client, loop)
            opened.append(blocking.close)
            return blocking

        yield async_
        for close in opened:
            close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        return
    for close in opened:
        close()


def noop_task(**extra: Any) -> dict[str, Any]:
    return {
        "task_type": "custom",
        "description": "sdk suite",
        "workflow": {"only": {"agent": "test_noop", "dependencies": []}},
        **extra,
    }


def test_tasks_submit_get_wait_list_and_cancel(
    connect: Callable[..., Any],
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    worker: subprocess.Popen[bytes],
) -> None:
    client = connect(make_client(), live_api.url)
    assert client.health.check().status in ("healthy", "degraded")
    task = client.tasks.submit(**noop_task(priority="high"))
    assert task.task_id.startswith("task_") and task.status in ("accepted", "queued")
    final = client.tasks.wait(task.task_id, timeout=30)
    assert final.status == "completed" and final.progress == 100
    assert client.tasks.get(task.task_id).results == final.results
    many = [client.tasks.submit(**noop_task()).task_id for _ in range(4)]
    views = client.tasks.wait(many, timeout=30)
    assert set(views) == set(many) and {v.status for v in views.values()} == {"completed"}
    listed = [t.task_id for t in client.tasks.list(page_size=2)]  # three pages and more
    assert sorted(listed) == sorted([task.task_id, *many])
    with pytest.raises(AIAConflictError) as done:
        client.tasks.cancel(task.task_id)  # it has finished
    assert done.value.status == 409 and done.value.code and done.value.request_id


def test_wait_times_out_with_the_pending_tasks(
    connect: Callable[..., Any], live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    client = connect(make_client(), live_api.url)
    slow = client.tasks.submit(
        task_type="custom",
        description="runs for 30 s",
        workflow={"only": {"agent": "test_noop", "params": {"sleep_s": 30}}},
    )
    started = time.monotonic()
    with pytest.raises(AIATimeoutError) as late:
        client.tasks.wait(slow.task_id, timeout=0.5)
    assert time.monotonic() - started < 5
    assert slow.task_id in late.value.details["pending"]
    assert client.tasks.cancel(slow.task_id).status in ("cancelled", "cancelling")


def test_explicit_and_automatic_idempotency_keys(
    connect: Callable[..., Any], live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    client = connect(make_client(), live_api.url)
    key = f"suite-{uuid.uuid4().hex}"
    first = client.tasks.submit(**noop_task(), idempotency_key=key)
    again = client.tasks.submit(**noop_task(), idempotency_key=key)
    assert again.task_id == first.task_id
    other = client.tasks.submit(**noop_task())  # a key made per call: a new task
    assert other.task_id != first.task_id


def test_submit_many_keeps_order_reports_rejections_and_resumes(
    connect: Callable[..., Any], live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    client = connect(make_client(), live_api.url)
    tasks = [noop_task(description=f"item {i}") for i in range(150)]
    tasks[70] = {"task_type": "", "description": "refused"}
    batch_id = f"suite-{uuid.uuid4().hex}"
    results = client.tasks.submit_many(tasks, chunk_size=40, batch_id=batch_id)
    assert [r.index for r in results] == list(range(150))
    assert results[70].status == "rejected" and results[70].error
    created = {r.task_id for r in results if r.status != "rejected"}
    assert len(created) == 149
    rerun = client.tasks.submit_many(tasks, chunk_size=40, batch_id=batch_id)
    assert {r.task_id for r in rerun if r.status != "rejected"} == created
    assert not any(r.created for r in rerun if r.status != "rejected")


def test_orchestrate_and_dry_run(
    connect: Callable[..., Any], live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    client = connect(make_client(), live_api.url)
    workflow = {
        "a": {"agent": "test_noop"},
        "b": {"agent": "test_noop", "dependencies": ["a"]},
    }
    plan = client.tasks.orchestrate(
        task_type="custom", description="plan only", workflow=workflow, dry_run=True
    )
    assert type(plan).__name__ == "DryRunPlan"
    accepted = client.tasks.orchestrate(task_type="custom", description="run", workflow=workflow)
    assert accepted.task_id.startswith("task_")
    client.tasks.cancel(accepted.task_id)


def test_errors_come_from_the_envelope(
    connect: Callable[..., Any],
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
) -> None:
    alice, bob = make_client(), make_client()
    client = connect(alice, live_api.url)
    with pytest.raises(AIAValidationError) as bad:
        client.tasks.submit(task_type="", description="no type")
    assert bad.value.status == 422 and bad.value.details["field"] == "task_type"
    assert bad.value.code and bad.value.message and bad.value.request_id
    theirs = connect(bob, live_api.url).tasks.submit(**noop_task())
    with pytest.raises(AIANotFoundError) as missing:
        client.tasks.get(theirs.task_id)
    assert missing.value.status == 404
    wrong = Credentials(alice.client_id, "not-the-secret")
    with pytest.raises(AIAAuthenticationError) as refused:
        connect(wrong, live_api.url).tasks.get(theirs.task_id)
    assert refused.value.status == 401 and refused.value.code == "invalid_client"


def test_graph_search_dashboard_webhooks_metrics_and_monitoring(
    connect: Callable[..., Any], live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    client = connect(make_client(scopes="read write"), live_api.url)
    written = client.knowledge_graph.upsert_entities(
        [
            {"node_id": "c1", "type": "customer", "properties": {"name": "Acme"}},
            {"node_id": "p1", "type": "product", "properties": {"name": "Suite"}},
        ]
    )
    assert written is not None
    client.knowledge_graph.upsert_relationships(
        [{"type": "PURCHASED", "source": "c1", "target": "p1", "properties": {"amount": 5.0}}]
    )
    rows = client.knowledge_graph.query(
        "MATCH (c:customer)-[:PURCHASED]->(p) RETURN c.name AS name"
    )
    assert "Acme" in str(rows.model_dump())
    assert client.knowledge_graph.get_entity("c1").model_dump()["node_id"] == "c1"
    search = client.knowledge_graph.semantic_search(query="Acme", limit=3)
    assert search.results is not None
    client.knowledge_graph.delete_entity("p1")
    with pytest.raises(AIANotFoundError):
        client.knowledge_graph.get_entity("p1")
    dashboard = client.business_intelligence.get_dashboard()
    assert dashboard.metrics.revenue is not None
    with pytest.raises(AIAValidationError) as month:
        client.business_intelligence.get_dashboard(month="2025-13")
    assert month.value.details.get("field") == "month"
    hook = client.webhooks.register(
        webhook_url="https://hooks.example/sdk", events=["task.completed"]
    )
    assert client.webhooks.get(hook.webhook_id).webhook_id == hook.webhook_id
    assert any(h.webhook_id == hook.webhook_id for h in client.webhooks.list().webhooks)
    client.webhooks.update(hook.webhook_id, active=False)
    client.webhooks.delete(hook.webhook_id)
    with pytest.raises(AIANotFoundError):
        client.webhooks.get(hook.webhook_id)
    assert client.metrics.get() is not None
    recorded = client.monitoring.track_user_activity(user_id="u1", activity_type="login")
    assert recorded is not None
    assert client.monitoring.user_analytics("u1") is not None


@pytest.fixture(scope="module")
def limited_api(services: Services) -> Iterator[LiveApi]:
    """The API with a `free` tier of 3 requests at once, refilled at one a second."""
    tiers = {**services.settings.rate_limit_tiers}
    tiers["free"] = TierLimits(per_hour=10_000, per_minute=60, burst=3)
    app = create_app(services.settings.model_copy(update={"rate_limit_tiers": tiers}))
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


def test_a_429_is_waited_out_for_its_retry_after_then_succeeds(
    connect: Callable[..., Any], limited_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client(tier="free")
    limits: list[float] = []
    client = connect(creds, limited_api.url, on_retry=lambda _why, s: limits.append(s))
    with httpx.Client(base_url=limited_api.url) as raw:  # what the server asks for
        token = raw.post("/auth/token", data=creds.form(grant_type="client_credentials"))
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        while (r := raw.get("/tasks", headers=auth)).status_code != 429:
            pass
        retry_after = float(r.headers["retry-after"])
    started = time.monotonic()
    for _ in range(5):  # the bucket is empty: each call waits for the next token
        assert list(client.tasks.list()) == []
    assert limits and min(limits) >= retry_after * 0.9
    assert time.monotonic() - started >= retry_after
    strict = connect(creds, limited_api.url, max_rate_limit_retries=0)
    with pytest.raises(AIARateLimitError) as limited:
        for _ in range(10):
            list(strict.tasks.list())
    assert limited.value.status == 429 and limited.value.retry_after is not None
    assert limited.value.retry_after > 0
