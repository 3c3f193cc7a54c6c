"""Turning an event into one delivery row per subscribed endpoint (in the caller's transaction).

The one consumer of outgoing events: the pump hands it the task events it publishes, `alerts`
emits its `system.alert` events here. It only writes `webhook_deliveries` rows; sending them is
`aia_engine.webhooks`' job, so events never import webhooks and webhooks never import alerts
back through it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aia_engine.db.models import Webhook, WebhookDelivery


@dataclass(frozen=True)
class Outgoing:
    client_id: str | None
    """The client whose endpoints get it; None: every client's (system-wide alerts)."""
    event_type: str
    event_id: str
    task_id: str | None
    body: dict[str, Any]


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes every attempt sends and signs."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_delivery_id() -> str:
    return f"dlv_{secrets.token_hex(12)}"


def create_deliveries(
    session: Session, events: Sequence[Outgoing], *, now: datetime, exclude: Iterable[str] = ()
) -> list[str]:
    """Insert a pending delivery for each (event, active endpoint subscribed to its type); the
    ids returned are to be sent to the delivery queue after commit."""
    if not events:
        return []
    clients = {e.client_id for e in events}
    stmt = select(Webhook.id, Webhook.client_id, Webhook.events).where(Webhook.active)
    if None not in clients:
        stmt = stmt.where(Webhook.client_id.in_(clients))
    skip = set(exclude)
    hooks = [h for h in session.execute(stmt) if h.id not in skip]
    rows: list[dict[str, Any]] = []
    for event in events:
        encoded: bytes | None = None
        for hook in hooks:
            if event.event_type not in hook.events:
                continue
            if event.client_id is not None and hook.client_id != event.client_id:
                continue
            encoded = encoded or encode(event.body)
            rows.append(
                {
                    "id": new_delivery_id(),
                    "webhook_id": hook.id,
                    "client_id": hook.client_id,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "task_id": event.task_id,
                    "body": encoded,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "enqueued_at": now,
                    "created_at": now,
                }
            )
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return [r["id"] for r in rows]
