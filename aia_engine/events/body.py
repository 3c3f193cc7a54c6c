"""The public shape of an event, the same on webhooks and server-sent events. Pure.

    {"event_id": "evt_<pos>", "event_type": "task.completed", "timestamp": "...Z",
     "sequence": 7, "data": {"task_id": ..., "status": ..., "progress": ..., "results": ...}}

`event_id` names the event's place in the published stream (also the SSE `id:`), so a
receiver de-duplicates on it; `sequence` orders one task's events.

A knowledge-graph change (a task-less event owned by a client) has the same envelope, with
the graph's version as `sequence` and the change as `data` (`graph_event`):

    {"event_id": "evt_<pos>", "event_type": "knowledge_graph.created", "timestamp": "...Z",
     "sequence": 12, "data": {"change_type": "created", "entity_id": "cust_1",
     "entity_type": "customer", "timestamp": "...Z", "graph_version": 12, "source": "api"}}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aia_engine.graph.changes import EVENT_TYPES as GRAPH_EVENT_TYPES
from aia_engine.graph.changes import PREFIX as GRAPH_PREFIX
from aia_engine.graph.changes import SUMMARY

# Events of the log that webhooks may subscribe to (the others reach streams only), in the
# order the API lists them.
TASK_WEBHOOK_EVENTS = (
    "task.accepted",
    "task.started",
    "stage.completed",
    "stage.failed",
    "task.progress",
    "task.completed",
    "task.failed",
    "task.cancelled",
)
WEBHOOK_EVENTS = frozenset((*TASK_WEBHOOK_EVENTS, *GRAPH_EVENT_TYPES))
TERMINAL_EVENTS = frozenset({"task.completed", "task.failed", "task.cancelled"})
_STATUS = {
    "task.accepted": "accepted",
    "task.queued": "queued",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "cancelled",
    "task.retried": "queued",
}


def event_id(pos: int) -> str:
    return f"evt_{pos}"


def parse_event_id(value: str) -> int | None:
    """The stream position in an `evt_<pos>` id (or a bare number); None if it is neither."""
    raw = value.strip().removeprefix("evt_")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def public_event(
    *,
    pos: int,
    event_type: str,
    seq: int,
    created_at: datetime,
    stage: str | None,
    payload: dict[str, Any],
    task: dict[str, Any],
    progress: float | None = None,
) -> dict[str, Any]:
    """`task` holds the task's `id`, `progress`, `results` and `error` (as read now);
    `progress` is the task's progress recorded with the event, when it was written.

    An event says the progress of its own moment, never the task's progress at render time
    (the pump may render a `task.accepted` after the task has finished). Only events stored
    before revision 0014 lack it; they fall back to what they showed before.
    """
    if progress is None:
        progress = payload.get("progress", task["progress"] or 0.0)
    data: dict[str, Any] = {
        "task_id": task["id"],
        "status": _STATUS.get(event_type, "in_progress"),
        "progress": float(progress),
    }
    if event_type == "task.completed":
        data["progress"] = 100.0
        data["results"] = task["results"]
    elif event_type == "task.failed":
        data["error"] = task["error"] or payload.get("error")
    if stage is not None:
        data["stage"] = stage
        if "error" in payload and event_type != "task.failed":
            data["error"] = payload["error"]
        for key in ("attempt", "duration_s", "stage_progress", "agent", "retry_in_s", "because"):
            if key in payload:
                data[key] = payload[key]
    elif event_type in ("task.cancelled", "task.retried") and "stages" in payload:
        data["stages"] = payload["stages"]
    return {
        "event_id": event_id(pos),
        "event_type": event_type,
        "timestamp": iso(created_at),
        "sequence": seq,
        "data": data,
    }


def is_graph_event(body: dict[str, Any]) -> bool:
    """Whether a public event body is a knowledge-graph change (not a task's event)."""
    return str(body["event_type"]).startswith(GRAPH_PREFIX)


_GRAPH_OPTIONAL = ("relationship", "task_id", "relationships_removed")
_GRAPH_BASE = frozenset(
    {"change_type", "entity_id", "entity_type", "timestamp", "graph_version", "source"}
)


def graph_event(
    *, pos: int, event_type: str, seq: int, created_at: datetime, payload: dict[str, Any]
) -> dict[str, Any]:
    """The public body of a graph change, from its stored payload (`changes.record`).

    `data` always has change_type, entity_id, entity_type (both null for an `imported`
    summary), timestamp, graph_version and source; a relationship change adds `relationship`,
    an agent's write `task_id`; an `imported` summary adds `entity_types`, `changes` (counts
    by change type) and whatever else its writer recorded about the chunk."""
    stamp = iso(created_at)
    data: dict[str, Any] = {
        "change_type": payload.get("change_type", event_type.removeprefix(GRAPH_PREFIX)),
        "entity_id": payload.get("entity_id"),
        "entity_type": payload.get("entity_type"),
        "timestamp": stamp,
        "graph_version": payload.get("graph_version", seq),
        "source": payload.get("source"),
    }
    for key in _GRAPH_OPTIONAL:
        if key in payload:
            data[key] = payload[key]
    if data["change_type"] == SUMMARY:
        data["entity_types"] = payload.get("entity_types", [])
        data["changes"] = payload.get("changes", {})
        data.update((k, v) for k, v in payload.items() if k not in data and k not in _GRAPH_BASE)
    return {
        "event_id": event_id(pos),
        "event_type": event_type,
        "timestamp": stamp,
        "sequence": seq,
        "data": data,
    }


def event_from_row(row: Any, pos: int) -> dict[str, Any]:
    """The public body of a row of task_events (`task_id`, `type`, `seq`, `created_at`,
    `stage`, `payload`, `event_progress`) joined with its task (`progress`, `results`,
    `error`; NULL for a task-less graph change, rendered by `graph_event`)."""
    if row.task_id is None:
        return graph_event(
            pos=pos, event_type=row.type, seq=row.seq, created_at=row.created_at,
            payload=row.payload or {},
        )  # fmt: skip
    return public_event(
        pos=pos,
        event_type=row.type,
        seq=row.seq,
        created_at=row.created_at,
        stage=row.stage,
        payload=row.payload or {},
        task={"id": row.task_id, "progress": row.progress, "results": row.results,
              "error": row.error},
        progress=row.event_progress,
    )  # fmt: skip


def alert_event(
    *, event_id: str, alert_type: str, message: str, severity: str, details: dict[str, Any],
    created_at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """A `system.alert` body: what the guide's handler reads, plus the details."""
    return {
        "event_id": event_id,
        "event_type": "system.alert",
        "timestamp": iso(created_at),
        "sequence": 0,
        "data": {
            "alert_type": alert_type,
            "message": message,
            "severity": severity,
            "details": details,
        },
    }
