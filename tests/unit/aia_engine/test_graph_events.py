"""Graph changes as public events: the body rendered from what `changes.record` stores, and the
stream filters (`entity_types`, `change_types`) of GET /knowledge-graph/stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from aia_engine.errors import InvalidRequest, UnknownChangeType
from aia_engine.events.body import (
    WEBHOOK_EVENTS,
    event_from_row,
    graph_event,
    is_graph_event,
    public_event,
)
from aia_engine.graph import changes
from aia_engine.graph.changes import Change
from aia_engine.graph.filters import FILTER_CHANGE_TYPES, ChangeFilter, parse_filter, split_values
from aia_engine.webhooks.registry import EVENT_TYPES, WebhookCreate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STAMP = "2026-11-27T12:00:00Z"
PURCHASE = {
    "relationship_id": "r1", "type": "PURCHASED", "source": "c1", "target": "p1",
    "properties": {"amount": 10},
}  # fmt: skip


class Recorder:
    """A session that keeps the rows `changes.record` inserts."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def execute(self, _stmt: Any, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)


def stored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bodies the pump renders for these task_events rows (positions 1, 2, ...)."""
    out = []
    for pos, row in enumerate(rows, 1):
        full = SimpleNamespace(
            **row, created_at=NOW, event_progress=None, progress=None, results=None, error=None
        )
        out.append(event_from_row(full, pos))
    return out


def test_a_recorded_change_renders_what_the_guides_stream_reads() -> None:
    session = Recorder()
    batch = [
        Change("created", "c1", "customer"),
        Change("relationship_added", "c1", "customer", relationship=PURCHASE),
    ]
    changes.record(session, "client-a", 12, batch, source="api")  # type: ignore[arg-type]
    created, added = stored(session.rows)
    assert created == {
        "event_id": "evt_1", "event_type": "knowledge_graph.created", "timestamp": STAMP,
        "sequence": 12,
        "data": {"change_type": "created", "entity_id": "c1", "entity_type": "customer",
                 "timestamp": STAMP, "graph_version": 12, "source": "api"},
    }  # fmt: skip
    assert added["event_type"] == "knowledge_graph.relationship_added"
    assert added["data"]["relationship"] == PURCHASE and added["sequence"] == 12
    assert is_graph_event(created) and is_graph_event(added)


def test_an_agents_change_names_its_task() -> None:
    session = Recorder()
    batch = [Change("updated", "p1", "product")]
    changes.record(session, "client-a", 3, batch, source="agent", task_id="task_9")  # type: ignore[arg-type]
    (body,) = stored(session.rows)
    assert body["data"]["task_id"] == "task_9" and body["data"]["source"] == "agent"


def test_an_import_summary_counts_its_changes() -> None:
    session = Recorder()
    changes.record_summary(
        session,  # type: ignore[arg-type]
        "client-a",
        40,
        counts={"created": 4980, "updated": 20, "deleted": 0},
        entity_types=["product", "customer"],
        source="import",
        details={"import_id": "imp_1", "chunk": 3},
    )
    (body,) = stored(session.rows)
    assert body["event_type"] == "knowledge_graph.imported" and body["sequence"] == 40
    assert body["data"] == {
        "change_type": "imported", "entity_id": None, "entity_type": None, "timestamp": STAMP,
        "graph_version": 40, "source": "import", "entity_types": ["customer", "product"],
        "changes": {"created": 4980, "updated": 20}, "import_id": "imp_1", "chunk": 3,
    }  # fmt: skip


def test_a_task_events_body_is_unchanged() -> None:
    row = SimpleNamespace(
        task_id="task_1", type="stage.completed", seq=4, created_at=NOW, stage="s1",
        payload={"duration_s": 0.5}, event_progress=50.0, progress=50.0, results=None, error=None,
    )  # fmt: skip
    direct = public_event(
        pos=9, event_type="stage.completed", seq=4, created_at=NOW, stage="s1",
        payload={"duration_s": 0.5}, progress=50.0,
        task={"id": "task_1", "progress": 50.0, "results": None, "error": None},
    )  # fmt: skip
    assert json.dumps(event_from_row(row, 9)) == json.dumps(direct)
    assert not is_graph_event(direct)


def test_graph_event_types_are_subscribable() -> None:
    for event_type in changes.EVENT_TYPES:
        assert event_type in WEBHOOK_EVENTS and event_type in EVENT_TYPES
    hook = WebhookCreate(webhook_url="https://hooks.example/x", events=["knowledge_graph.created"])
    assert hook.events == ["knowledge_graph.created"]
    with pytest.raises(ValueError, match=r"knowledge_graph\.created"):
        WebhookCreate(webhook_url="https://hooks.example/x", events=["knowledge_graph.nope"])


def data(change_type: str, entity_type: str | None = "customer", **extra: Any) -> dict[str, Any]:
    body = graph_event(
        pos=1,
        event_type=f"knowledge_graph.{change_type}",
        seq=1,
        created_at=NOW,
        payload={"change_type": change_type, "entity_type": entity_type, **extra},
    )
    rendered: dict[str, Any] = body["data"]
    return rendered


SUMMARY = data(
    "imported", None, entity_types=["customer", "product"], changes={"created": 3, "deleted": 0}
)
GUIDE = ChangeFilter(
    frozenset({"customer", "product"}),
    frozenset({"created", "updated", "relationship_added"}),
)


@pytest.mark.parametrize(
    ("flt", "change", "passes"),
    [
        (ChangeFilter(), data("deleted", "order"), True),
        (ChangeFilter(), SUMMARY, True),
        (GUIDE, data("created"), True),
        (GUIDE, data("updated", "product"), True),
        (GUIDE, data("deleted"), False),  # change type not listed
        (GUIDE, data("created", "order"), False),  # entity type not listed
        (GUIDE, data("relationship_added", "customer", relationship=PURCHASE), True),
        # a relationship change is filtered on its source node's type
        (GUIDE, data("relationship_added", "order", relationship=PURCHASE), False),
        (GUIDE, data("relationship_removed", "customer", relationship=PURCHASE), False),
        (ChangeFilter(frozenset({"Customer"})), data("created"), False),  # exact type
        # a summary: `imported`, or one of the change types it counts (above zero)...
        (GUIDE, SUMMARY, True),
        (ChangeFilter(None, frozenset({"imported"})), SUMMARY, True),
        (ChangeFilter(None, frozenset({"deleted"})), SUMMARY, False),  # counted 0
        (ChangeFilter(None, frozenset({"updated"})), SUMMARY, False),
        # ...and one of its entity types
        (ChangeFilter(frozenset({"product"})), SUMMARY, True),
        (ChangeFilter(frozenset({"order"})), SUMMARY, False),
        (ChangeFilter(frozenset({"order"}), frozenset({"imported"})), SUMMARY, False),
        (
            ChangeFilter(frozenset({"customer"})),
            data("imported", None, changes={"created": 1}),
            False,
        ),
    ],
)
def test_filters(flt: ChangeFilter, change: dict[str, Any], passes: bool) -> None:
    assert flt.accepts(change) is passes


def test_filter_values_are_comma_separated_or_repeated() -> None:
    assert split_values(["customer,product", " order ", "", "customer"]) == [
        "customer", "product", "order",
    ]  # fmt: skip
    parsed = parse_filter(["customer,product"], ["created", "updated,relationship_added"])
    assert parsed == GUIDE
    assert parse_filter([], [""]) == ChangeFilter()  # nothing given: everything passes


def test_an_unknown_change_type_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownChangeType) as caught:
        parse_filter([], ["created,renamed"])
    err = caught.value
    assert err.code == "E050" and err.status == 422
    assert err.details["allowed_values"] == list(FILTER_CHANGE_TYPES)
    assert err.details["provided_value"] == "renamed" and "relationship_added" in err.message


@pytest.mark.parametrize("bad", ["customer product", "1customer", "x" * 65, "cust'omer"])
def test_an_entity_type_must_be_an_identifier(bad: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filter([bad], [])
    assert caught.value.code == "E001" and caught.value.details["field"] == "entity_types"


def test_too_many_filter_values_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="at most 100"):
        parse_filter([",".join(f"t{i}" for i in range(101))], [])
