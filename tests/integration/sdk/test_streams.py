"""The SDK's event streams against a live API (restartable), a real worker, the event pump,
PostgreSQL and Redis: `AIAStreamingClient.tasks.stream_all`, `tasks.monitor`,
`knowledge_graph.stream_updates`, and their reconnections (server restart, revoked token).

What a stream yields is compared with the client's event log in PostgreSQL (`events_after`):
the same events, each once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, Generic, TypeVar

import httpx
import pytest
from aia_client import (
    AIAClient,
    AIANotFoundError,
    AIAStreamingClient,
    AIASyncClient,
    AIAValidationError,
    GraphUpdate,
    TaskUpdate,
)

from aia_engine.events.replay import events_after
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import Services
from tests.integration.sdk.conftest import RestartableApi

pytestmark = pytest.mark.timeout(90)
U = TypeVar("U")
IDLE = 5.0  # the test API beats every second


def chain(n: int, sleep_s: float) -> dict[str, Any]:
    """`n` test_noop stages one after another, each taking `sleep_s`."""
    return {
        f"s{i}": {
            "agent": "test_noop",
            "dependencies": [f"s{i - 1}"] if i else [],
            "params": {"sleep_s": sleep_s},
        }
        for i in range(n)
    }


def sdk(api: RestartableApi, creds: Credentials) -> AIAClient:
    return AIAClient(creds.client_id, creds.client_secret, base_url=api.url)


def streaming(api: RestartableApi, creds: Credentials) -> AIAStreamingClient:
    return AIAStreamingClient(
        creds.client_id, creds.client_secret, base_url=api.url, idle_timeout=IDLE
    )


async def submit(client: AIAClient, stages: int = 3, sleep_s: float = 0.2) -> str:
    accepted = await client.tasks.orchestrate(
        task_type="custom", description="sdk stream test", workflow=chain(stages, sleep_s)
    )
    assert not isinstance(accepted, dict) and hasattr(accepted, "task_id")
    return str(accepted.task_id)


def stored_ids(services: Services, client_id: str, task_id: str) -> list[str]:
    """The task's events as the log holds them, in order."""
    rows = events_after(services.sessions, client_id=client_id, after=0, task_id=task_id)
    return [body["event_id"] for _, body in rows]


class Collector(Generic[U]):
    """Reads a stream in the background; a test waits for what it expects to arrive."""

    def __init__(self, stream: AsyncIterator[U]) -> None:
        self.items: list[U] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: AsyncIterator[U]) -> None:
        try:
            async for item in stream:
                async with self._changed:
                    self.items.append(item)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()  # a waiter sees the end (or the error)

    async def until(self, found: Callable[[list[U]], bool], what: str, timeout: float) -> None:
        async def wait() -> None:
            async with self._changed:
                while not found(self.items):
                    if self._task.done():
                        self._task.result()  # the stream's error, if it raised
                        raise AssertionError(f"the stream ended before {what}: {self.items}")
                    await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{what} within {timeout} s; got {self.items}") from None

    async def live(self, poke: Callable[[], Awaitable[Callable[[U], bool]]]) -> None:
        """Until the stream is open and following live events: `poke()` makes one (and says
        which item shows it), again each second until one arrives. A stream that starts `now`
        cannot promise what happened while it was being opened; what comes after this can."""
        deadline = time.monotonic() + 30
        while True:
            shows = await poke()
            try:
                await self.until(partial(_any, shows), "a poke", 1.5)
                return
            except AssertionError:
                if self._task.done() or time.monotonic() > deadline:
                    raise

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def of_task(task_id: str, items: list[TaskUpdate]) -> list[TaskUpdate]:
    return [u for u in items if u.task_id == task_id]


def ended(task_id: str) -> Callable[[list[TaskUpdate]], bool]:
    return lambda items: any(u.final for u in of_task(task_id, items))


def test_stream_all_yields_the_updates_of_tasks_submitted_after_it_started(
    stream_api: RestartableApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()

    async def scenario() -> None:
        async with sdk(stream_api, creds) as client, streaming(stream_api, creds) as streams:
            before = await submit(client, 1, 0.0)
            await client.tasks.wait(before, timeout=30)
            seen = Collector(streams.tasks.stream_all())

            async def poke() -> Callable[[TaskUpdate], bool]:
                task_id = await submit(client, 1, 0.0)
                return lambda u: u.task_id == task_id

            await seen.live(poke)
            task_id = await submit(client, 3, 0.2)
            await seen.until(ended(task_id), f"task {task_id}'s final event", 30)
            await seen.close()
        updates = of_task(task_id, seen.items)
        assert [u.event_id for u in updates] == stored_ids(services, creds.client_id, task_id)
        final = updates[-1]  # what the guide's example reads
        assert (final.task_id, final.status, final.progress) == (task_id, "completed", 100.0)
        assert final.results is not None and final.event_type == "task.completed"
        assert all(isinstance(u, TaskUpdate) for u in updates)
        assert not of_task(before, seen.items), "a task finished before the stream started"

    asyncio.run(scenario())


def test_monitor_follows_one_task_and_ends_after_its_final_event(
    stream_api: RestartableApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()

    async def scenario() -> tuple[str, list[TaskUpdate], list[TaskUpdate]]:
        async with sdk(stream_api, creds) as client:
            task_id = await submit(client, 3, 0.2)
            live = await asyncio.wait_for(_all(client.tasks.monitor(task_id)), 30)
            # Once the task has ended, its stream replays it and ends too.
            again = await asyncio.wait_for(_all(client.tasks.monitor(task_id)), 30)
            with pytest.raises(AIANotFoundError):
                await _all(client.tasks.monitor("task_does_not_exist"))
        return task_id, live, again

    task_id, live, again = asyncio.run(scenario())
    assert [u.event_id for u in live] == stored_ids(services, creds.client_id, task_id)
    assert [u.event_id for u in again] == [u.event_id for u in live]
    assert live[0].event_type == "task.accepted" and live[-1].status == "completed"
    assert live[-1].final and live[-1].results is not None
    assert {u.task_id for u in live} == {task_id}


def test_the_sync_client_monitors_a_task_too(
    stream_api: RestartableApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    with AIASyncClient(creds.client_id, creds.client_secret, base_url=stream_api.url) as client:
        accepted = client.tasks.orchestrate(
            task_type="custom", description="sync monitor", workflow=chain(2, 0.1)
        )
        task_id = str(getattr(accepted, "task_id"))  # noqa: B009  (TaskAccepted | DryRunPlan)
        updates = list(client.tasks.monitor(task_id, idle_timeout=IDLE))
    assert [u.event_id for u in updates] == stored_ids(services, creds.client_id, task_id)
    assert updates[-1].status == "completed"


def test_graph_updates_pass_the_filters_with_the_guides_attributes(
    stream_api: RestartableApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    filters = {"entity_types": ["customer"], "change_types": ["created", "relationship_added"]}

    async def scenario() -> list[GraphUpdate]:
        async with sdk(stream_api, creds) as client, streaming(stream_api, creds) as streams:
            seen = Collector(streams.knowledge_graph.stream_updates(filters=filters))
            pokes = iter(range(1000))

            async def poke() -> Callable[[GraphUpdate], bool]:
                name = f"warm{next(pokes)}"
                await client.knowledge_graph.upsert_entities(
                    [{"node_id": name, "type": "customer", "properties": {}}]
                )
                return lambda u: u.entity_id == name

            await seen.live(poke)
            start = len(seen.items)
            graph = client.knowledge_graph
            await graph.upsert_entities(
                [
                    {"node_id": "c1", "type": "customer", "properties": {"name": "Ann"}},
                    {"node_id": "p1", "type": "product", "properties": {}},  # not a listed type
                ]
            )
            await graph.upsert_entities(
                [{"node_id": "c1", "type": "customer", "properties": {"name": "Anne"}}]  # updated
            )
            await graph.upsert_relationships(
                [{"type": "PURCHASED", "source": "c1", "target": "p1", "properties": {"n": 1}}]
            )
            await graph.upsert_entities([{"node_id": "c9", "type": "customer", "properties": {}}])
            await seen.until(
                lambda items: any(u.entity_id == "c9" for u in items), "the last change", 30
            )
            await seen.close()
        return seen.items[start:]

    got = asyncio.run(scenario())
    assert [(u.change_type, u.entity_id) for u in got] == [
        ("created", "c1"),
        ("relationship_added", "c1"),
        ("created", "c9"),
    ]
    added = got[1]
    assert added.entity_type == "customer" and added.relationship is not None
    assert (added.relationship["type"], added.relationship["target"]) == ("PURCHASED", "p1")
    assert all(isinstance(u, GraphUpdate) and u.timestamp is not None for u in got)
    positions = [int(u.event_id.removeprefix("evt_")) for u in got]
    assert positions == sorted(set(positions))


def test_a_bad_filter_raises_the_validation_error(
    stream_api: RestartableApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()

    async def scenario() -> None:
        async with streaming(stream_api, creds) as streams:
            stream = streams.knowledge_graph.stream_updates({"change_types": ["renamed"]})
            with pytest.raises(AIAValidationError) as raised:
                await _all(stream)
            assert raised.value.code == "E050" and raised.value.status == 422
            assert raised.value.details["field"] == "change_types"
            with pytest.raises(ValueError, match="unknown filters"):
                streams.knowledge_graph.stream_updates({"entity_type": ["customer"]})

    asyncio.run(scenario())


def test_a_restart_mid_stream_resumes_where_it_left_off(
    stream_api: RestartableApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()

    async def scenario() -> tuple[str, list[TaskUpdate], int]:
        async with sdk(stream_api, creds) as client:
            task_id = await submit(client, 6, 0.4)
            got: list[TaskUpdate] = []
            published_when_back = 0
            async for update in client.tasks.monitor(task_id, idle_timeout=IDLE):
                got.append(update)
                if len(got) == 3:  # the server goes away mid-stream, and comes back
                    await asyncio.to_thread(stream_api.restart)
                    published_when_back = len(stored_ids(services, creds.client_id, task_id))
        return task_id, got, published_when_back

    restarts = stream_api.restarts
    task_id, got, published_when_back = asyncio.run(scenario())
    assert stream_api.restarts == restarts + 1
    stored = stored_ids(services, creds.client_id, task_id)
    assert published_when_back > 3, "nothing happened while the server was away"
    assert [u.event_id for u in got] == stored, "an event missed, repeated or out of order"
    assert got[-1].status == "completed"


def test_a_revoked_token_is_renewed_when_the_stream_reconnects(
    stream_api: RestartableApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()

    async def scenario() -> tuple[str, list[TaskUpdate], str, str]:
        async with sdk(stream_api, creds) as client, streaming(stream_api, creds) as streams:
            seen = Collector(streams.tasks.stream_all())

            async def poke() -> Callable[[TaskUpdate], bool]:
                task_id = await submit(client, 1, 0.0)
                return lambda u: u.task_id == task_id

            await seen.live(poke)
            transport = streams._transport
            old = await transport.token()
            async with httpx.AsyncClient(base_url=stream_api.url) as http:
                form = creds.form(token=transport._refresh_token)
                assert (await http.post("/auth/revoke", data=form)).status_code == 200
                refused = await http.get("/tasks", headers={"Authorization": f"Bearer {old}"})
                assert refused.status_code == 401  # the stream's token is dead now
            await asyncio.to_thread(stream_api.restart)  # the open stream drops
            task_id = await submit(client, 2, 0.1)
            await seen.until(ended(task_id), f"task {task_id}'s final event after the restart", 40)
            await seen.close()
            return task_id, seen.items, old, await transport.token()

    task_id, items, old, new = asyncio.run(scenario())
    assert new != old
    assert [u.event_id for u in of_task(task_id, items)] == stored_ids(
        services, creds.client_id, task_id
    )
    positions = [int(u.event_id.removeprefix("evt_")) for u in items]
    assert positions == sorted(set(positions)), "an event repeated or out of order"


def _any(shows: Callable[[U], bool], items: list[U]) -> bool:
    return any(shows(item) for item in items)


async def _all(stream: AsyncIterator[U]) -> list[U]:
    return [item async for item in stream]
