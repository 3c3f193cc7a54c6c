"""System alerts: recorded once per condition, logged, and sent to subscribed endpoints.

An alert is a `system.alert` event with the guide's fields (`alert_type`, `message`,
`severity`). Each carries a de-duplication key naming the condition and its episode (say
`no_workers:<since>`), so however many processes notice it, one alert goes out.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from aia_engine.db.models import SystemAlert
from aia_engine.events.body import alert_event
from aia_engine.events.fanout import Outgoing, create_deliveries

log = logging.getLogger("aia_engine.alerts")


def raise_alert(
    session: Session,
    *,
    dedupe_key: str,
    alert_type: str,
    message: str,
    severity: str = "warning",
    details: dict[str, Any] | None = None,
    client_id: str | None = None,
    now: datetime,
    exclude_webhooks: tuple[str, ...] = (),
) -> list[str] | None:
    """Record the alert and create its deliveries; None if this condition was alerted already.
    `client_id` None alerts every client subscribed to `system.alert`."""
    stmt = (
        insert(SystemAlert)
        .values(
            dedupe_key=dedupe_key[:200],
            client_id=client_id,
            alert_type=alert_type,
            severity=severity,
            message=message,
            details=details or {},
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(SystemAlert.id)
    )
    alert_id = session.execute(stmt).scalar_one_or_none()
    if alert_id is None:
        return None
    log.warning(
        "system.alert %s [%s]: %s",
        alert_type,
        severity,
        message,
        extra={"alert_type": alert_type, "client_id": client_id, "details": details or {}},
    )
    body = alert_event(
        event_id=f"alert_{alert_id}",
        alert_type=alert_type,
        message=message,
        severity=severity,
        details=details or {},
        created_at=now,
    )
    out = Outgoing(client_id, "system.alert", body["event_id"], None, body)
    return create_deliveries(session, [out], now=now, exclude=exclude_webhooks)


def alerts_count(session: Session, alert_type: str | None = None) -> int:
    stmt = select(func.count()).select_from(SystemAlert)
    if alert_type is not None:
        stmt = stmt.where(SystemAlert.alert_type == alert_type)
    return int(session.execute(stmt).scalar_one())
