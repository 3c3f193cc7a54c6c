"""The SDK's stream items built from the bodies the server renders (aia_engine.events.body),
and the pure decisions of its reconnecting reader."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aia_client._stream import after_refusal, parse_event, parse_position
from aia_client.updates import GraphUpdate, TaskUpdate

from aia_engine.events.body import graph_event, public_event

WHEN = datetime(2025, 10, 3, 12, 0, tzinfo=UTC)
TASK = {"id": "task_1", "progress": 40.0, "results": {"rows": 3}, "error": None}


def task_body(
    event_type: str,
    *,
    stage: str | None = None,
    payload: dict[str, Any] | None = None,
    task: dict[str, Any] = TASK,
) -> dict[str, Any]:
    return public_event(
        pos=7, event_type=event_type, seq=3, created_at=WHEN, stage=stage,
        payload=payload or {}, task=task,
    )  # fmt: skip


def test_a_completed_task_event_reads_as_the_guides_example_does() -> None:
    update = TaskUpdate.from_event(task_body("task.completed"))
    assert (update.task_id, update.status, update.progress) == ("task_1", "completed", 100.0)
    assert update.results == {"rows": 3}
    assert (update.event_id, update.event_type, update.sequence) == ("evt_7", "task.completed", 3)
    assert update.timestamp == WHEN and update.final
    assert update.data["results"] == {"rows": 3}


def test_a_stage_event_keeps_its_stage_and_the_fields_the_sdk_does_not_name() -> None:
    body = task_body(
        "stage.failed", stage="extract", payload={"error": {"code": "E020"}, "attempt": 2}
    )
    update = TaskUpdate.from_event(body)
    assert (update.stage, update.status, update.final) == ("extract", "in_progress", False)
    assert update.error == {"code": "E020"}
    assert update.attempt == 2  # type: ignore[attr-defined]  # an extra field, kept


def test_a_failed_task_event_carries_its_error() -> None:
    failed = {**TASK, "error": {"code": "E022", "message": "boom"}}
    update = TaskUpdate.from_event(task_body("task.failed", task=failed))
    assert update.status == "failed" and update.error["code"] == "E022" and update.final


def test_a_relationship_change_reads_as_the_guides_example_does() -> None:
    relationship = {"relationship_id": "r1", "type": "PURCHASED", "source": "c1", "target": "p1"}
    payload = {
        "change_type": "relationship_added",
        "entity_id": "c1",
        "entity_type": "customer",
        "source": "api",
        "relationship": relationship,
    }
    body = graph_event(
        pos=9, event_type="knowledge_graph.relationship_added", seq=4, created_at=WHEN,
        payload=payload,
    )  # fmt: skip
    update = GraphUpdate.from_event(body)
    assert (update.change_type, update.entity_id, update.entity_type) == (
        "relationship_added",
        "c1",
        "customer",
    )
    assert update.relationship == relationship and update.timestamp == WHEN
    assert (update.graph_version, update.source, update.event_id) == (4, "api", "evt_9")


def test_an_import_summary_has_its_counts_instead_of_one_entity() -> None:
    payload = {
        "change_type": "imported",
        "entity_types": ["order", "product"],
        "changes": {"created": 40, "deleted": 1},
        "chunk": 2,
    }
    body = graph_event(
        pos=10, event_type="knowledge_graph.imported", seq=5, created_at=WHEN, payload=payload
    )
    update = GraphUpdate.from_event(body)
    assert update.entity_id is None and update.entity_types == ["order", "product"]
    assert update.changes == {"created": 40, "deleted": 1}
    assert update.chunk == 2  # type: ignore[attr-defined]


def test_event_ids_are_read_as_positions() -> None:
    assert parse_position("evt_12") == parse_position("12") == parse_position(12) == 12
    for bad in ("", "evt_", "twelve", "-1", "1.5"):
        with pytest.raises(ValueError, match="not an event id"):
            parse_position(bad)


def test_blocks_without_an_event_are_skipped_and_a_broken_one_is_an_error() -> None:
    assert parse_event("", "message", "") is None  # the server's opening `retry: 2000`
    event = parse_event("5", "task.started", '{"event_id": "evt_5"}')
    assert event is not None and (event.position, event.event) == (5, "task.started")
    with pytest.raises(ValueError):
        parse_event("6", "task.started", "[1]")


@pytest.mark.parametrize(
    ("status", "renewed", "wait", "action"),
    [
        (401, False, None, "renew"),
        (401, True, None, "raise"),  # a fresh token refused too
        (429, False, 5.0, "retry"),
        (429, False, 500.0, "raise"),  # longer than max_wait
        (502, False, None, "retry"),
        (503, True, 1.0, "retry"),
        (504, False, None, "retry"),
        (500, False, None, "raise"),
        (400, False, None, "raise"),
        (404, False, None, "raise"),
        (422, False, None, "raise"),
    ],
)
def test_what_a_refused_stream_does(
    status: int, renewed: bool, wait: float | None, action: str
) -> None:
    assert after_refusal(status, renewed=renewed, wait=wait, max_wait=120.0) == action
