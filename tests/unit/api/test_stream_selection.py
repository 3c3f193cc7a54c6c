"""Which events a stream shows: every stream of a client hears the client's whole channel (task
events and graph changes alike), so task streams must drop graph changes and the graph stream
task events; and a cursor never reads the same events twice over what it did not select."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aia_engine.events.body import graph_event, public_event
from aia_engine.graph.filters import ChangeFilter
from api.routes.graph_stream import graph_selection
from api.streams import _Cursor, task_selection

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def task_body(pos: int, task_id: str = "task_1", event_type: str = "stage.completed") -> Any:
    task = {"id": task_id, "progress": 0.0, "results": None, "error": None}
    return public_event(
        pos=pos, event_type=event_type, seq=pos, created_at=NOW, stage=None, payload={}, task=task
    )


def graph_body(pos: int, change: str = "created", **payload: Any) -> Any:
    return graph_event(
        pos=pos,
        event_type=f"knowledge_graph.{change}",
        seq=pos,
        created_at=NOW,
        payload={"change_type": change, "entity_id": "c1", "entity_type": "customer", **payload},
    )


def test_task_streams_never_show_graph_changes() -> None:
    by_agent = graph_body(2, "updated", task_id="task_1", source="agent")  # names the task
    for selection in (task_selection(None), task_selection("task_1")):
        assert selection.accepts(task_body(1))
        assert not selection.accepts(graph_body(3)) and not selection.accepts(by_agent)
    assert not task_selection("task_1").accepts(task_body(4, "task_2"))
    assert task_selection("task_1").ends(task_body(5, event_type="task.completed"))
    assert not task_selection(None).ends(task_body(5, event_type="task.completed"))


def test_the_graph_stream_shows_only_graph_changes_that_pass_its_filter() -> None:
    everything = graph_selection(ChangeFilter())
    assert everything.accepts(graph_body(1)) and not everything.accepts(task_body(2))
    deletions = graph_selection(ChangeFilter(None, frozenset({"deleted"})))
    assert not deletions.accepts(graph_body(3)) and deletions.accepts(graph_body(4, "deleted"))


def test_a_cursor_moves_past_what_it_does_not_select() -> None:
    """500 changes the stream does not want, then one it does: the catch-up reads each once
    (it asks for what follows the last event it looked at, not the last it sent)."""
    log = [(pos, graph_body(pos)) for pos in range(1, 501)] + [(501, graph_body(501, "deleted"))]
    asked: list[int] = []

    async def replay(after: int) -> list[tuple[int, Any]]:
        asked.append(after)
        return [(pos, body) for pos, body in log if pos > after][:500]

    cursor = _Cursor(graph_selection(ChangeFilter(None, frozenset({"deleted"}))), 0, replay)
    sent = asyncio.run(cursor.catch_up())
    assert len(sent) == 1 and sent[0].startswith(b"id: 501\n")
    assert asked == [0, 500] and cursor.last == 501
    assert cursor.take(501, log[-1][1]) is None  # a live copy of it is not sent again
