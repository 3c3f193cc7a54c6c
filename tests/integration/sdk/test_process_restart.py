"""The SDK's streams across a kill -9 of the API process (tests/integration/sdk/api_process.py):
`tasks.monitor` and `AIAStreamingClient.tasks.stream_all` reconnect by themselves with
Last-Event-ID once the API is back on the same port, and yield every event once, in order
(compared with the client's event log in PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aia_client import AIAClient, AIAStreamingClient, TaskUpdate
from aia_client.models import TaskAccepted

from aia_engine.events.replay import events_after
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import Services
from tests.integration.sdk.api_process import ApiProcess

pytestmark = pytest.mark.timeout(90)
IDLE = 5.0  # the API process beats every second


def chain(n: int, sleep_s: float) -> dict[str, Any]:
    return {
        f"s{i}": {
            "agent": "test_noop",
            "dependencies": [f"s{i - 1}"] if i else [],
            "params": {"sleep_s": sleep_s},
        }
        for i in range(n)
    }


async def orchestrate(client: AIAClient, description: str, stages: int, sleep_s: float) -> str:
    accepted = await client.tasks.orchestrate(
        task_type="custom", description=description, workflow=chain(stages, sleep_s)
    )
    assert isinstance(accepted, TaskAccepted), accepted
    return str(accepted.task_id)


def stored(services: Services, client_id: str) -> list[str]:
    return [b["event_id"] for _, b in events_after(services.sessions, client_id=client_id, after=0)]


def test_monitor_and_stream_all_survive_a_kill_9(
    api_process: ApiProcess, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    url = api_process.url

    async def scenario() -> tuple[list[TaskUpdate], list[TaskUpdate], str, str, int]:
        async with (
            AIAClient(creds.client_id, creds.client_secret, base_url=url) as client,
            AIAStreamingClient(
                creds.client_id, creds.client_secret, base_url=url, idle_timeout=IDLE
            ) as streams,
        ):
            all_updates: list[TaskUpdate] = []
            first_done = asyncio.Event()
            ids: list[str] = []

            async def read_all() -> None:
                # From the client's first event (a new client has none): nothing submitted
                # before the stream opened can be missed.
                async for update in streams.tasks.stream_all(start="start"):
                    all_updates.append(update)
                    if len(ids) == 2 and {
                        u.task_id for u in all_updates if u.status == "completed"
                    } >= set(ids):
                        first_done.set()
                        return

            reader = asyncio.create_task(read_all())
            ids.append(await orchestrate(client, "restart", 6, 0.4))
            monitored: list[TaskUpdate] = []
            published_when_back = 0
            async for update in client.tasks.monitor(ids[0], idle_timeout=IDLE):
                monitored.append(update)
                if len(monitored) == 3:
                    await asyncio.to_thread(api_process.restart)
                    published_when_back = len(stored(services, creds.client_id))
                    ids.append(await orchestrate(client, "after", 2, 0.1))
            await asyncio.wait_for(first_done.wait(), 60)
            await reader
            return monitored, all_updates, ids[0], ids[1], published_when_back

    restarts = api_process.restarts
    monitored, all_updates, first, second, published_when_back = asyncio.run(scenario())
    assert api_process.restarts == restarts + 1
    assert published_when_back > 3, "nothing was published while the API was away"
    log = stored(services, creds.client_id)
    assert [u.event_id for u in all_updates] == log, "stream_all missed, repeated or reordered"
    mine = [u.event_id for u in all_updates if u.task_id == first]
    assert [u.event_id for u in monitored] == mine, "monitor missed, repeated or reordered"
    assert monitored[-1].status == "completed"
    assert all_updates[-1].task_id in (first, second)
