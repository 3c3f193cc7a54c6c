"""The delivery log of an endpoint, redelivery by hand, and the test ping. Scoped per client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from aia_engine.db.models import Webhook, WebhookAttempt, WebhookDelivery
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, InvalidRequest, NotFound
from aia_engine.events.body import iso
from aia_engine.events.fanout import encode, new_delivery_id
from aia_engine.webhooks.registry import WebhookNotFound

MAX_PAGE = 100


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"delivery {delivery_id!r} not found", delivery_id=delivery_id)


def _when(value: datetime | None) -> str | None:
    return iso(value) if value else None


def render_delivery(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "delivery_id": row.id,
        "webhook_id": row.webhook_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "task_id": row.task_id,
        "status": row.status,
        "attempt_count": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "next_attempt_at": _when(row.next_attempt_at) if row.status == "pending" else None,
        "created_at": _when(row.created_at),
        "delivered_at": _when(row.delivered_at),
        "attempts": [
            {
                "attempt": a.attempt,
                "at": _when(a.created_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response_body": a.response_body,
                "next_attempt_at": _when(a.next_attempt_at),
            }
            for a in attempts
        ],
    }


def _owned_hook(session: Any, webhook_id: str, client_id: str) -> Webhook:
    hook = session.scalars(
        select(Webhook).where(Webhook.id == webhook_id, Webhook.client_id == client_id)
    ).one_or_none()
    if hook is None:
        raise WebhookNotFound(webhook_id)
    return hook  # type: ignore[no-any-return]


def list_deliveries(
    sessions: Sessions,
    webhook_id: str,
    *,
    client_id: str,
    limit: int = 50,
    before: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Newest first, `limit` per page; `next_cursor` (a delivery id) continues."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be 1-{MAX_PAGE}", field="limit", provided_value=limit)
    with sessions.begin() as session:
        _owned_hook(session, webhook_id, client_id)
        stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if before is not None:
            anchor = session.get(WebhookDelivery, before)
            if anchor is None or anchor.webhook_id != webhook_id:
                raise InvalidRequest("unknown cursor", field="cursor", provided_value=before)
            stmt = stmt.where(
                (WebhookDelivery.created_at, WebhookDelivery.id) < (anchor.created_at, anchor.id)  # type: ignore[operator]
            )
        rows = list(
            session.scalars(
                stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(
                    limit + 1
                )
            )
        )
        page, more = rows[:limit], len(rows) > limit
        tries: dict[str, list[WebhookAttempt]] = {r.id: [] for r in page}
        if page:
            for a in session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(tries))
                .order_by(WebhookAttempt.attempt)
            ):
                tries[a.delivery_id].append(a)
        items = [render_delivery(r, tries[r.id]) for r in page]
    return {
        "webhook_id": webhook_id,
        "deliveries": items,
        "count": len(items),
        "next_cursor": page[-1].id if more else None,
    }


def get_delivery(sessions: Sessions, delivery_id: str, *, client_id: str) -> dict[str, Any]:
    with sessions.begin() as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None or row.client_id != client_id:
            raise DeliveryNotFound(delivery_id)
        tries = list(
            session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.attempt)
            )
        )
        return render_delivery(row, tries)


def redeliver(sessions: Sessions, delivery_id: str, *, client_id: str, now: datetime) -> str:
    """Make a delivery due again now (same event id and body, freshly signed); returns its id
    for the caller to queue. Whatever its state: delivered, failed or still retrying."""
    with sessions.begin() as session:
        row = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        ).one_or_none()
        if row is None or row.client_id != client_id:
            raise DeliveryNotFound(delivery_id)
        hook = session.get(Webhook, row.webhook_id)
        if hook is None or not hook.active:
            raise Conflict(
                f"webhook {row.webhook_id} is disabled; enable it (PATCH active: true) first",
                webhook_id=row.webhook_id,
            )
        if row.lease_until is not None and row.lease_until > now:
            raise Conflict("an attempt of this delivery is in flight", delivery_id=delivery_id)
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status="pending",
                next_attempt_at=now,
                enqueued_at=now,
                delivered_at=None,
                created_at=now,  # a fresh retry window
            )
        )
    return delivery_id


def create_ping(sessions: Sessions, webhook_id: str, *, client_id: str, now: datetime) -> str:
    """A `webhook.test` delivery for one endpoint; attempted once, never retried."""
    with sessions.begin() as session:
        hook = _owned_hook(session, webhook_id, client_id)
        if not hook.active:
            raise Conflict(
                f"webhook {webhook_id} is disabled; enable it (PATCH active: true) first",
                webhook_id=webhook_id,
            )
        delivery_id = new_delivery_id()
        body = {
            "event_id": f"ping_{delivery_id.removeprefix('dlv_')}",
            "event_type": "webhook.test",
            "timestamp": iso(now),
            "sequence": 0,
            "data": {"webhook_id": webhook_id, "message": "a test delivery from AIA Engine"},
        }
        session.add(
            WebhookDelivery(
                id=delivery_id,
                webhook_id=webhook_id,
                client_id=client_id,
                event_id=body["event_id"],
                event_type="webhook.test",
                task_id=None,
                body=encode(body),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                enqueued_at=now,
                created_at=now,
            )
        )
    return delivery_id
