"""Listing tasks: filters and cursor pagination, scoped to the client."""

from __future__ import annotations

from aia_engine.tasks.queries import list_tasks
from tests.integration.conftest import Engine, noop, workflow


def test_list_filters_and_paginates_per_client(engine: Engine) -> None:
    ids = [
        engine.submit({**workflow({"a": noop()}), "task_type": "listing"}, client_id="lister")
        for _ in range(5)
    ]
    engine.submit(workflow({"a": noop()}), client_id="someone_else")
    seen: list[str] = []
    cursor = None
    while True:
        page = list_tasks(
            engine.sessions, client_id="lister", task_type="listing", limit=2, cursor=cursor
        )
        seen += [t["task_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert list_tasks(engine.sessions, client_id="lister", task_type="nothing")["tasks"] == []
