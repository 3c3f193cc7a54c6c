"""One delivery attempt, start to finish: claim, check the URL again, sign, send, record.

The host is resolved and checked again at every attempt (an endpoint that resolved to a
public address at registration may not now), and the request goes to the checked address
itself, with the original host in `Host` (and as the TLS server name), so no second lookup
can send it elsewhere. Redirects are never followed. At most `webhook_endpoint_concurrency`
attempts to one endpoint run at once, so a hanging endpoint holds few delivery workers.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from aia_engine.clock import utcnow
from aia_engine.db.models import Webhook, WebhookAttempt, WebhookDelivery
from aia_engine.db.session import Sessions
from aia_engine.errors import UnsafeWebhookUrl
from aia_engine.events.body import iso
from aia_engine.ops.alerts import raise_alert
from aia_engine.redis.counters import Slots
from aia_engine.settings import Settings
from aia_engine.webhooks.crypto import decrypt
from aia_engine.webhooks.policy import Decision, decide
from aia_engine.webhooks.registry import allow_list
from aia_engine.webhooks.signing import sign_headers
from aia_engine.webhooks.urls import Resolver, SafeTarget, check_url

log = logging.getLogger(__name__)
USER_AGENT = "AIA-Engine-Webhooks/1.0"
BUSY_DELAY = timedelta(seconds=1)

_FAILED = text(
    """
    UPDATE webhooks
       SET failing_since = coalesce(failing_since, :now),
           consecutive_failures = consecutive_failures + 1
     WHERE id = :id
    RETURNING failing_since
    """
)
_CLAIM = text(
    """
    UPDATE webhook_deliveries d
       SET lease_until = :lease, attempts = d.attempts + 1
      FROM webhooks w
     WHERE d.id = :id AND w.id = d.webhook_id
       AND d.status = 'pending' AND d.next_attempt_at <= :now
       AND (d.lease_until IS NULL OR d.lease_until < :now)
    RETURNING d.attempts, d.body, d.event_id, d.created_at, w.id AS webhook_id, w.url,
              w.active, w.client_id, w.secret_encrypted, w.previous_secret_encrypted,
              w.previous_secret_expires_at
    """
)


class EndpointSlots(Slots):
    """Attempts in flight per endpoint; without Redis, deliveries go on uncapped."""

    def __init__(self, client: redis.Redis, cap: int, hold_s: float) -> None:
        super().__init__(client, prefix="aia:wh:inflight:", cap=cap, hold_s=hold_s, fail_open=True)


@dataclass
class Sent:
    status_code: int | None
    latency_ms: float
    error: str | None
    response_body: str | None
    retry_after: str | None
    address: str | None


@dataclass
class AttemptOutcome:
    kind: str
    """delivered | retry | failed | gone | skipped | busy | cancelled"""
    status_code: int | None = None
    alerts: list[str] | None = None
    """Deliveries of a `system.alert` this attempt raised, to be sent to the queue."""


def http_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(settings.webhook_timeout_s),
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the checked address is the target
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


def attempt_delivery(
    sessions: Sessions,
    delivery_id: str,
    settings: Settings,
    *,
    http: httpx.Client,
    resolve: Resolver,
    slots: EndpointSlots | None = None,
    rng: random.Random | None = None,
    once: bool = False,
) -> AttemptOutcome:
    """Attempt a delivery. `once` (the test ping): no retry, and the endpoint's health and
    disabling are left alone."""
    now = utcnow()
    lease = now + timedelta(seconds=settings.webhook_timeout_s + 30)
    with sessions.begin() as session:
        claimed = session.execute(_CLAIM, {"id": delivery_id, "now": now, "lease": lease}).first()
        if claimed is not None and not claimed.active:
            _finish(session, delivery_id, status="cancelled", error="endpoint is disabled")
            return AttemptOutcome("cancelled")
    if claimed is None:
        return AttemptOutcome("skipped")  # delivered, not due yet, or in flight elsewhere
    secrets = _secrets(claimed, settings, now)
    try:
        target = check_url(claimed.url, resolve=resolve, allow=allow_list(settings))
    except UnsafeWebhookUrl as exc:
        sent = Sent(None, 0.0, f"refused before connecting: {exc.message}", None, None, None)
    else:
        # The slot covers the connection only. A short wait (a fast endpoint frees a slot in
        # moments): a slow endpoint must not hold this thread, which healthy endpoints'
        # deliveries need; past it the attempt is handed back and sent again shortly.
        if slots is not None and not slots.acquire(
            claimed.webhook_id, delivery_id, wait_s=SLOT_WAIT_S
        ):
            _hand_back(sessions, delivery_id)
            return AttemptOutcome("busy")
        try:
            sent = send(
                http, target, secrets, msg_id=claimed.event_id, body=bytes(claimed.body),
                settings=settings,
            )  # fmt: skip
        finally:
            if slots is not None:
                slots.release(claimed.webhook_id, delivery_id)
    done = utcnow()
    decision = decide(
        status_code=sent.status_code,
        retry_after=sent.retry_after,
        attempt=claimed.attempts,
        first_created_at=claimed.created_at,
        now=done,
        settings=settings,
        rng=rng,
    )
    if once and decision.kind != "delivered":
        decision = Decision("failed")
    alerts: list[str] = []
    with sessions.begin() as session:
        if decision.kind == "delivered" and not once:
            _record_success(session, delivery_id, claimed, sent, now=done)
        else:
            alerts = _record(
                session, delivery_id, claimed, sent, decision, now=done, settings=settings,
                once=once,
            )  # fmt: skip
    log.info(
        "webhook delivery %s attempt %d to %s: %s (%s, %.0f ms)",
        delivery_id,
        claimed.attempts,
        claimed.webhook_id,
        decision.kind,
        sent.status_code or sent.error,
        sent.latency_ms,
    )
    return AttemptOutcome(decision.kind, sent.status_code, alerts)


SLOT_WAIT_S = 0.1
_SECRETS: dict[str, str] = {}


def _decrypt(token: str, settings: Settings) -> str:
    """Decrypted secrets, remembered by their ciphertext (a rotation changes the ciphertext)."""
    plain = _SECRETS.get(token)
    if plain is None:
        if len(_SECRETS) > 10_000:
            _SECRETS.clear()
        plain = _SECRETS[token] = decrypt(token, settings)
    return plain


def _secrets(claimed: Any, settings: Settings, now: datetime) -> list[str]:
    secrets = [_decrypt(claimed.secret_encrypted, settings)]
    if (
        claimed.previous_secret_encrypted
        and claimed.previous_secret_expires_at
        and claimed.previous_secret_expires_at > now
    ):
        secrets.append(_decrypt(claimed.previous_secret_encrypted, settings))
    return secrets


def _hand_back(sessions: Sessions, delivery_id: str) -> None:
    """Undo a claim whose endpoint had no free slot: not an attempt; due again in a moment."""
    now = utcnow()
    with sessions.begin() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                attempts=WebhookDelivery.attempts - 1,
                lease_until=None,
                next_attempt_at=now + BUSY_DELAY,
                enqueued_at=None,
            )
        )


_SUCCESS = text(
    """
    WITH attempt AS (
        INSERT INTO webhook_attempts
            (delivery_id, attempt, status_code, latency_ms, error, response_body, address,
             next_attempt_at, created_at)
        VALUES (:id, :attempt, :code, :latency, NULL, :response, :address, NULL, :now)
    ), delivery AS (
        UPDATE webhook_deliveries
           SET status = 'delivered', delivered_at = :now, last_status_code = :code,
               last_error = NULL, lease_until = NULL, enqueued_at = NULL, next_attempt_at = NULL
         WHERE id = :id
    )
    UPDATE webhooks
       SET failing_since = NULL, consecutive_failures = 0, last_success_at = :now
     WHERE id = :hook
       -- only when something changes (or once a second): busy endpoints share this row
       AND (failing_since IS NOT NULL OR consecutive_failures <> 0 OR last_success_at IS NULL
            OR last_success_at < CAST(:now AS timestamptz) - interval '1 second')
    """
)


def _record_success(
    session: Session, delivery_id: str, claimed: Any, sent: Sent, *, now: datetime
) -> None:
    """The common case in one round trip."""
    session.execute(
        _SUCCESS,
        {
            "id": delivery_id,
            "attempt": claimed.attempts,
            "code": sent.status_code,
            "latency": round(sent.latency_ms, 2),
            "response": sent.response_body,
            "address": sent.address,
            "now": now,
            "hook": claimed.webhook_id,
        },
    )


def send(
    http: httpx.Client,
    target: SafeTarget,
    secrets: list[str],
    *,
    msg_id: str,
    body: bytes,
    settings: Settings,
) -> Sent:
    """POST `body` to the first checked address that accepts a connection."""
    headers = {
        **sign_headers(secrets, msg_id=msg_id, timestamp=int(time.time()), body=body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    parts = urlsplit(target.url)
    default_port = 443 if target.scheme == "https" else 80
    headers["Host"] = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:
        headers["Host"] = f"[{target.host}]" + (
            "" if target.port == default_port else f":{target.port}"
        )
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    started = time.perf_counter()
    error = "no address to connect to"
    for address in target.addresses:
        netloc = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
        url = urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))
        try:
            with http.stream(
                "POST", url, content=body, headers=headers, extensions=extensions
            ) as response:
                kept = _read_some(response, settings.webhook_response_max_bytes)
                latency = (time.perf_counter() - started) * 1000
                error_text = None
                if 300 <= response.status_code < 400:
                    location = response.headers.get("location", "")[:200]
                    error_text = f"redirect not followed (Location: {location})"
                elif not 200 <= response.status_code < 300:
                    error_text = f"HTTP {response.status_code}"
                return Sent(
                    response.status_code,
                    latency,
                    error_text,
                    kept,
                    response.headers.get("retry-after"),
                    address,
                )
        except httpx.ConnectError as exc:
            error = f"connection failed: {exc}"[:500]
            continue
        except httpx.TimeoutException:
            latency = (time.perf_counter() - started) * 1000
            return Sent(
                None,
                latency,
                f"timed out after {settings.webhook_timeout_s:g}s",
                None,
                None,
                address,
            )
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            return Sent(None, latency, f"{type(exc).__name__}: {exc}"[:500], None, None, address)
    return Sent(None, (time.perf_counter() - started) * 1000, error, None, None, None)


def _read_some(response: httpx.Response, limit: int) -> str:
    kept = b""
    for chunk in response.iter_bytes():
        kept += chunk
        if len(kept) >= limit:
            break
    return kept[:limit].decode("utf-8", errors="replace")


def _finish(session: Session, delivery_id: str, *, status: str, error: str | None) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status=status, next_attempt_at=None, lease_until=None, last_error=error)
    )


def _record(
    session: Session,
    delivery_id: str,
    claimed: Any,
    sent: Sent,
    decision: Decision,
    *,
    now: datetime,
    settings: Settings,
    once: bool = False,
) -> list[str]:
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempt=claimed.attempts,
            status_code=sent.status_code,
            latency_ms=round(sent.latency_ms, 2),
            error=sent.error,
            response_body=sent.response_body,
            address=sent.address,
            next_attempt_at=decision.next_attempt_at,
            created_at=now,
        )
    )
    values: dict[str, Any] = {
        "last_status_code": sent.status_code,
        "last_error": sent.error,
        "lease_until": None,
        "enqueued_at": None,  # out of the queue: the sweeper sends it when it is due
        "next_attempt_at": decision.next_attempt_at,
    }
    if decision.kind == "delivered":
        values |= {"status": "delivered", "delivered_at": now}
    elif decision.kind in ("failed", "gone"):
        values["status"] = "failed"
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(values))
    hook_id = claimed.webhook_id
    if once:
        return []
    if decision.kind == "delivered":
        session.execute(
            update(Webhook)
            .where(Webhook.id == hook_id)
            .values(failing_since=None, consecutive_failures=0, last_success_at=now)
        )
        return []
    hook = session.execute(_FAILED, {"id": hook_id, "now": now}).one()
    if decision.kind == "gone":
        reason = "the endpoint answered 410 Gone"
    elif now - hook.failing_since >= timedelta(seconds=settings.webhook_disable_after_s):
        reason = f"every delivery attempt failed since {iso(hook.failing_since)}"
    else:
        return []
    disabled = session.execute(
        update(Webhook)
        .where(Webhook.id == hook_id, Webhook.active)
        .values(active=False, disabled_reason=reason, updated_at=now)
        .returning(Webhook.client_id, Webhook.url)
    ).first()
    if disabled is None:
        return []  # another attempt disabled it first, and raised the alert
    return (
        raise_alert(
            session,
            dedupe_key=f"webhook_disabled:{hook_id}:{iso(hook.failing_since)}",
            alert_type="webhook_disabled",
            severity="critical",
            message=f"webhook {hook_id} was disabled: {reason}",
            details={"webhook_id": hook_id, "webhook_url": disabled.url, "reason": reason},
            client_id=disabled.client_id,
            now=now,
            exclude_webhooks=(hook_id,),
        )
        or []
    )
