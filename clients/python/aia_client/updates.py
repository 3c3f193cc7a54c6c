"""What the SDK's streams yield: `TaskUpdate` (a task's event) and `GraphUpdate` (a change of
the knowledge graph), each built from an event's body.

Every event the API streams has the body a webhook gets:

    {"event_id": "evt_42", "event_type": "task.completed", "timestamp": "...Z", "sequence": 7,
     "data": {"task_id": ..., "status": "completed", "progress": 100.0, "results": {...}}}

An update carries the fields of `data` as attributes (the ones the API documents are typed; any
other is kept as an extra attribute), the envelope's `event_id`, `event_type` and `sequence`,
and `data` itself as it came. `event_id` resumes a stream: pass it as `last_event_id=` to get
every later event once, in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_EVENTS = frozenset({"task.completed", "task.failed", "task.cancelled"})
"""The event types that end a task's stream."""


class _Update(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    event_id: str
    """`evt_<position>`: where the event stands in the client's stream."""
    event_type: str
    sequence: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    """The event's `data` as the server sent it."""


class TaskUpdate(_Update):
    """One event of a task: `task.accepted`, `task.started`, `stage.completed`, `task.progress`,
    `task.completed` (with `results`), `task.failed` (with `error`), ..."""

    task_id: str
    status: str
    """accepted, queued, in_progress, completed, failed or cancelled."""
    progress: float = 0.0
    """Percent done when the event happened (100 once completed)."""
    results: Any = None
    """The task's results (on `task.completed`)."""
    error: Any = None
    """What failed (on `task.failed`, and on a stage's failure or retry)."""
    stage: str | None = None
    """The stage the event is about (stage events)."""
    timestamp: datetime
    """When the event happened."""

    @property
    def final(self) -> bool:
        """Whether this is the task's last event (completed, failed or cancelled)."""
        return self.event_type in TERMINAL_EVENTS

    @classmethod
    def from_event(cls, body: dict[str, Any]) -> TaskUpdate:
        return cls.model_validate(
            {**_data(body), **_envelope(body), "timestamp": body["timestamp"]}
        )


class GraphUpdate(_Update):
    """One change of the knowledge graph. `change_type` is created, updated, deleted,
    relationship_added, relationship_removed or imported (a summary of an import chunk: then
    `entity_types` and `changes`, counts by change type, stand for the entity)."""

    change_type: str
    entity_id: str | None = None
    entity_type: str | None = None
    """The node's type; for a relationship change, its source node's type."""
    timestamp: datetime
    """When the change was made."""
    relationship: dict[str, Any] | None = None
    """relationship_id, type, source, target, properties (relationship changes)."""
    graph_version: int | None = None
    source: str | None = None
    """What wrote it: api, an agent's task, an import."""
    task_id: str | None = None
    """The task whose agent made the change, if one did."""
    entity_types: list[str] | None = None
    changes: dict[str, int] | None = None
    relationships_removed: list[Any] | None = None
    """The relationships a deleted node took with it."""

    @classmethod
    def from_event(cls, body: dict[str, Any]) -> GraphUpdate:
        return cls.model_validate({**_data(body), **_envelope(body)})


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def _envelope(body: dict[str, Any]) -> dict[str, Any]:
    """The envelope's fields, which win over a `data` field of the same name."""
    return {
        "event_id": body.get("event_id"),
        "event_type": body.get("event_type"),
        "sequence": body.get("sequence"),
        "data": _data(body),
    }
