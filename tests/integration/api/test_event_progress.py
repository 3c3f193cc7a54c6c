"""Every event carries the task's progress at the moment it happened, on streams, in the stored
log and in webhook bodies, however late the event pump renders it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import text

from aia_engine.events.body import TASK_WEBHOOK_EVENTS
from aia_engine.events.pump import EventPump
from aia_engine.events.replay import events_after
from tests.integration.api.conftest import (
    ALLOWED_RECEIVER,
    Credentials,
    LiveApi,
    token_for,
    wait_task,
)
from tests.integration.conftest import Services

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.timeout(120)]

# A diamond: a, then b and c in parallel, then d. Four stages: each completion adds 25 %.
DIAMOND = {
    "task_type": "custom",
    "description": "progress test",
    "workflow": {
        "a": {"agent": "noop", "dependencies": []},
        "b": {"agent": "noop", "dependencies": ["a"]},
        "c": {"agent": "noop", "dependencies": ["a"]},
        "d": {"agent": "noop", "dependencies": ["b", "c"]},
    },
}


def check_progress(events: list[dict[str, Any]]) -> None:
    """What GET /tasks/{id} said right after each event: 0 until a stage completes, then 25 %
    per completed stage; no other event moves it; 100 only with the last completion."""
    expected = 0.0
    seen: list[tuple[str, float]] = []
    for event in events:
        kind, progress = event["event_type"], event["data"]["progress"]
        seen.append((kind, progress))
        if kind == "stage.completed":
            expected += 25.0
        assert progress == expected, seen
    assert [p for _, p in seen] == sorted(p for _, p in seen), seen  # never goes back
    assert seen[0] == ("task.accepted", 0.0) and seen[-1] == ("task.completed", 100.0), seen
    kinds = [k for k, _ in seen]
    assert ("task.started", 0.0) in seen and kinds.count("stage.completed") == 4, seen


def pump_all(services: Services) -> None:
    """Render every pending event now, as the beat's pump would (its Redis client closed
    after)."""
    client = redis.Redis.from_url(services.redis_url)
    pump = EventPump(services.sessions, client, lambda _: None)
    assert pump.acquire()
    try:
        while pump.pump_once().events:
            pass
    finally:
        pump.release()
        client.close()


def test_events_carry_the_progress_of_their_moment(
    live_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client()
    with live_api.client(headers={"Authorization": f"Bearer {token_for(live_api, creds)}"}) as http:
        hook = http.post(
            "/webhooks/register",
            json={"webhook_url": f"http://{ALLOWED_RECEIVER}/hook", "events": TASK_WEBHOOK_EVENTS},
        )
        assert hook.status_code == 201, hook.text
        accepted = http.post("/tasks/orchestrate", json=DIAMOND)
        assert accepted.status_code == 200, accepted.text
        task_id = accepted.json()["task_id"]
        assert http.get(f"/tasks/{task_id}").json()["progress"] == 0.0
        view = wait_task(http, task_id)
        assert view["status"] == "completed" and view["progress"] == 100.0

        # The pump renders the events only now, when the task has long finished.
        pump_all(services)
        stored = [body for _, body in events_after(
            services.sessions, client_id=creds.client_id, after=0, task_id=task_id
        )]  # fmt: skip
        check_progress(stored)

        # The task's stream (which replays its history) says the same.
        with http.stream("GET", f"/tasks/{task_id}/events") as r:
            streamed = [
                json.loads(line.removeprefix("data:"))
                for line in r.iter_lines()
                if line.startswith("data:")
            ]
        assert streamed == stored

    # And so do the webhook bodies, built from the same events.
    with services.sessions.begin() as session:
        bodies = {
            row.event_id: json.loads(bytes(row.body))
            for row in session.execute(
                text("SELECT event_id, body FROM webhook_deliveries WHERE task_id = :t"),
                {"t": task_id},
            )
        }
    webhooked = [e for e in stored if e["event_type"] in TASK_WEBHOOK_EVENTS]
    assert len(bodies) == len(webhooked) >= 7
    for event in webhooked:
        assert bodies[event["event_id"]]["data"]["progress"] == event["data"]["progress"], event


def test_a_failed_workflow_records_the_progress_each_event_left(
    live_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    """Stage failures, skips and the task's failure (the Python path) carry the progress the
    task had right after each of them, as GET /tasks/{id} showed it."""
    body = {
        "task_type": "custom",
        "description": "progress on failure",
        "workflow": {
            "a": {"agent": "noop", "dependencies": []},
            "b": {"agent": "test_noop", "dependencies": ["a"], "params": {"fail": True}},
            "c": {"agent": "noop", "dependencies": ["b"]},
            "d": {"agent": "noop", "dependencies": ["c"]},
        },
    }
    creds = make_client()
    with live_api.client(headers={"Authorization": f"Bearer {token_for(live_api, creds)}"}) as http:
        task_id = http.post("/tasks/orchestrate", json=body).json()["task_id"]
        view = wait_task(http, task_id)
        assert view["status"] == "failed"
    pump_all(services)
    stored = [body for _, body in events_after(
        services.sessions, client_id=creds.client_id, after=0, task_id=task_id
    )]  # fmt: skip
    seen = [
        (e["event_type"], e.get("data", {}).get("stage"), e["data"]["progress"]) for e in stored
    ]
    # a completes (25 %); b fails and, with it, c and d can no longer run: every stage has
    # ended, which the task's progress counts as done.
    assert ("stage.completed", "a", 25.0) in seen, seen
    assert seen[0] == ("task.accepted", None, 0.0) and seen[-1] == ("task.failed", None, 100.0)
    assert [p for *_, p in seen] == sorted(p for *_, p in seen), seen
    assert view["progress"] == seen[-1][2]
    ended = [s for s in seen if s[0] in ("stage.failed", "stage.skipped")]
    assert [s[1] for s in ended] == ["b", "c", "d"], seen
    assert [s[2] for s in ended] == [50.0, 75.0, 100.0], seen
