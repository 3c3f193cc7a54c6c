"""Graph changes as events in the event log (`task_events` rows with no task, owned by the
client), published by the same pump as task events: streams, resume and webhooks alike.

One write of one item is one event (`created`, `updated`, `deleted`, `relationship_added`,
`relationship_removed`); an import chunk is one `imported` event that counts what it changed,
so a 100k-row import reaches subscribers as a few dozen events, not 100k."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from aia_engine.db.models import TaskEvent

PREFIX = "knowledge_graph."
CHANGE_TYPES = ("created", "updated", "deleted", "relationship_added", "relationship_removed")
SUMMARY = "imported"
EVENT_TYPES = tuple(PREFIX + c for c in (*CHANGE_TYPES, SUMMARY))
"""Event types of graph changes, in the order the API lists them (webhooks may subscribe)."""


@dataclass(frozen=True)
class Change:
    change_type: str
    """One of CHANGE_TYPES."""
    entity_id: str
    """The node's id; for a relationship change, its source node's id."""
    entity_type: str
    relationship: dict[str, Any] | None = None
    """For relationship changes: relationship_id, type, source, target, properties."""
    details: dict[str, Any] | None = None
    """More fields of the event's data (e.g. a deleted node's `relationships_removed`)."""


def record(
    session: Session,
    client_id: str,
    version: int,
    changes: list[Change],
    *,
    source: str,
    task_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """One event per change, in this transaction (after `versions.begin_write`). `source` says
    who wrote: `api`, `import` or `agent` (then `task_id` names the task whose stage wrote)."""
    if not changes:
        return
    rows = []
    for change in changes:
        payload: dict[str, Any] = {
            "change_type": change.change_type,
            "entity_id": change.entity_id,
            "entity_type": change.entity_type,
            "graph_version": version,
            "source": source,
        }
        if change.relationship is not None:
            payload["relationship"] = change.relationship
        if change.details:
            payload.update(change.details)
        if task_id is not None:
            payload["task_id"] = task_id
        rows.append(_row(client_id, version, change.change_type, payload, now))
    session.execute(insert(TaskEvent), rows)


def record_summary(
    session: Session,
    client_id: str,
    version: int,
    *,
    counts: dict[str, int],
    entity_types: list[str],
    source: str,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """One `imported` event for a chunk of a bulk write: `counts` by change type (e.g.
    {"created": 4980, "updated": 20, "relationship_added": 5000}), the entity types touched."""
    payload: dict[str, Any] = {
        "change_type": SUMMARY,
        "entity_id": None,
        "entity_type": None,
        "entity_types": sorted(entity_types),
        "changes": {k: v for k, v in counts.items() if v},
        "graph_version": version,
        "source": source,
        **(details or {}),
    }
    session.execute(insert(TaskEvent), [_row(client_id, version, SUMMARY, payload, now)])


def _row(
    client_id: str, version: int, change_type: str, payload: dict[str, Any], now: datetime | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "task_id": None,
        "client_id": client_id,
        "seq": version,
        "type": PREFIX + change_type,
        "stage": None,
        "payload": payload,
    }
    if now is not None:
        row["created_at"] = now
    return row
