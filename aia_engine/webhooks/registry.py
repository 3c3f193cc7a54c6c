"""Webhook endpoints: register, read, update, delete and rotate secrets, per client."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from aia_engine.clock import utcnow
from aia_engine.db.models import Webhook
from aia_engine.db.session import Sessions
from aia_engine.errors import NotFound
from aia_engine.events.body import TASK_WEBHOOK_EVENTS
from aia_engine.graph.changes import EVENT_TYPES as GRAPH_EVENT_TYPES
from aia_engine.settings import Settings
from aia_engine.webhooks.crypto import encrypt
from aia_engine.webhooks.urls import Resolver, check_url, system_resolver

EVENT_TYPES = (*TASK_WEBHOOK_EVENTS, "system.alert", *GRAPH_EVENT_TYPES)
"""What an endpoint may subscribe to: task events, alerts and knowledge-graph changes."""
ROTATION_GRACE = timedelta(hours=24)


def _events(value: list[str]) -> list[str]:
    unknown = [e for e in value if e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; events are {', '.join(EVENT_TYPES)}")
    return list(dict.fromkeys(value))


class WebhookCreate(BaseModel):
    """The guide's registration body."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))
    secret: str | None = Field(default=None, min_length=16, max_length=256)
    active: bool = True

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        return _events(value)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    active: bool | None = None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _events(value)


class WebhookNotFound(NotFound):
    """Raised when no webhook with that id belongs to the caller."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"webhook {webhook_id!r} not found", webhook_id=webhook_id)


def allow_list(settings: Settings) -> set[tuple[str, int]]:
    found = set()
    for entry in settings.webhook_allow:
        host, _, port = entry.rpartition(":")
        if host and port.isdigit():
            found.add((host.strip("[]").lower(), int(port)))
    return found


def render(hook: Webhook) -> dict[str, Any]:
    """What clients see: never the secret."""
    return {
        "webhook_id": hook.id,
        "webhook_url": hook.url,
        "events": list(hook.events),
        "active": hook.active,
        "disabled_reason": hook.disabled_reason,
        "created_at": _iso(hook.created_at),
        "updated_at": _iso(hook.updated_at),
        "previous_secret_valid_until": _iso(hook.previous_secret_expires_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def register(
    sessions: Sessions,
    body: WebhookCreate,
    *,
    client_id: str,
    settings: Settings,
    resolve: Resolver = system_resolver,
) -> dict[str, Any]:
    check_url(body.webhook_url, resolve=resolve, allow=allow_list(settings))
    secret = body.secret or f"whs_{secrets.token_urlsafe(32)}"
    now = utcnow()
    hook = Webhook(
        id=f"wh_{secrets.token_hex(8)}",
        client_id=client_id,
        url=body.webhook_url,
        events=body.events,
        secret_encrypted=encrypt(secret, settings),
        active=body.active,
        created_at=now,
        updated_at=now,
    )
    with sessions.begin() as session:
        session.add(hook)
    shown = render(hook)
    if body.secret is None:
        shown["secret"] = secret  # generated here: shown this once
    return shown


def _owned(session: Any, webhook_id: str, client_id: str) -> Webhook:
    hook = session.scalars(
        select(Webhook)
        .where(Webhook.id == webhook_id, Webhook.client_id == client_id)
        .with_for_update()
    ).one_or_none()
    if hook is None:
        raise WebhookNotFound(webhook_id)
    return hook  # type: ignore[no-any-return]


def list_webhooks(sessions: Sessions, *, client_id: str) -> dict[str, Any]:
    with sessions.begin() as session:
        hooks = session.scalars(
            select(Webhook).where(Webhook.client_id == client_id).order_by(Webhook.created_at)
        )
        items = [render(h) for h in hooks]
    return {"webhooks": items, "count": len(items)}


def get_webhook(sessions: Sessions, webhook_id: str, *, client_id: str) -> dict[str, Any]:
    with sessions.begin() as session:
        return render(_owned(session, webhook_id, client_id))


def update_webhook(
    sessions: Sessions,
    webhook_id: str,
    body: WebhookUpdate,
    *,
    client_id: str,
    settings: Settings,
    resolve: Resolver = system_resolver,
) -> dict[str, Any]:
    if body.webhook_url is not None:
        check_url(body.webhook_url, resolve=resolve, allow=allow_list(settings))
    with sessions.begin() as session:
        hook = _owned(session, webhook_id, client_id)
        if body.webhook_url is not None:
            hook.url = body.webhook_url
        if body.events is not None:
            hook.events = body.events
        if body.active is not None:
            if body.active and not hook.active:
                hook.failing_since, hook.consecutive_failures = None, 0  # a fresh start
            hook.active = body.active
            hook.disabled_reason = None if body.active else "disabled by the client"
        hook.updated_at = utcnow()
        return render(hook)


def delete_webhook(sessions: Sessions, webhook_id: str, *, client_id: str) -> None:
    with sessions.begin() as session:
        session.delete(_owned(session, webhook_id, client_id))


def rotate_secret(
    sessions: Sessions,
    webhook_id: str,
    *,
    client_id: str,
    settings: Settings,
    secret: str | None = None,
) -> dict[str, Any]:
    """A new signing secret; the old one keeps signing too for `ROTATION_GRACE`."""
    new = secret or f"whs_{secrets.token_urlsafe(32)}"
    now = utcnow()
    with sessions.begin() as session:
        hook = _owned(session, webhook_id, client_id)
        hook.previous_secret_encrypted = hook.secret_encrypted
        hook.previous_secret_expires_at = now + ROTATION_GRACE
        hook.secret_encrypted = encrypt(new, settings)
        hook.updated_at = now
        shown = render(hook)
    if secret is None:
        shown["secret"] = new
    return shown
