"""API clients: provisioning (the CLI) and lookups (the API)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from aia_engine.auth.hashing import hash_secret, new_client_id, new_secret
from aia_engine.auth.scopes import TIERS, format_scopes, parse_scopes
from aia_engine.clock import utcnow
from aia_engine.db.models import ApiClient
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidRequest, NotFound


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str
    name: str
    tier: str
    scopes: list[str]


def _check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise InvalidRequest(
            f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}",
            field="tier",
            provided_value=tier,
        )
    return tier


def create_client(
    sessions: Sessions, *, name: str, tier: str = "developer", scopes: str = "read write"
) -> NewClient:
    """Create a client; its secret is returned here once and stored only as a hash."""
    if not name.strip():
        raise InvalidRequest("a client needs a name", field="name", provided_value=name)
    parsed = parse_scopes(scopes)
    if not parsed:
        raise InvalidRequest(
            "a client needs at least one scope", field="scopes", provided_value=scopes
        )
    client_id, secret = new_client_id(), new_secret()
    with sessions.begin() as session:
        session.add(
            ApiClient(
                client_id=client_id,
                secret_hash=hash_secret(secret),
                name=name.strip(),
                tier=_check_tier(tier),
                scopes=parsed,
                active=True,
                created_at=utcnow(),
            )
        )
    return NewClient(client_id, secret, name.strip(), tier, parsed)


def list_clients(sessions: Sessions) -> list[dict[str, Any]]:
    with sessions.begin() as session:
        rows = session.scalars(select(ApiClient).order_by(ApiClient.created_at))
        return [
            {
                "client_id": c.client_id,
                "name": c.name,
                "tier": c.tier,
                "scopes": format_scopes(c.scopes),
                "active": c.active,
                "created_at": c.created_at.isoformat(),
            }
            for c in rows
        ]


def set_active(sessions: Sessions, client_id: str, active: bool) -> None:
    with sessions.begin() as session:
        client = session.get(ApiClient, client_id)
        if client is None:
            raise NotFound(f"client {client_id!r} not found", client_id=client_id)
        client.active = active
    forget_active_clients()


def rotate_secret(sessions: Sessions, client_id: str) -> str:
    """A new secret for `client_id`; the old one stops working at once."""
    secret = new_secret()
    with sessions.begin() as session:
        client = session.get(ApiClient, client_id)
        if client is None:
            raise NotFound(f"client {client_id!r} not found", client_id=client_id)
        client.secret_hash = hash_secret(secret)
        client.secret_rotated_at = utcnow()
    return secret


# Per process: client id -> (monotonic time asked, the answer). How long an answer is trusted
# is the caller's (`AIA_CLIENT_CACHE_S`).
_active_cache: dict[str, tuple[float, ApiClient | None]] = {}
_cache_lock = threading.Lock()


MISSING: Any = object()


def forget_active_clients() -> None:
    """Ask PostgreSQL again on the next check of every client (what the lifetime's passing does)."""
    with _cache_lock:
        _active_cache.clear()


def cached_active_client(client_id: str, lifetime_s: float) -> ApiClient | None:
    """The cached answer of `active_client`, or `MISSING` when it must be asked again."""
    with _cache_lock:
        hit = _active_cache.get(client_id)
    if hit is not None and time.monotonic() - hit[0] < lifetime_s:
        return hit[1]
    return MISSING  # type: ignore[no-any-return]


def active_client(sessions: Sessions, client_id: str, lifetime_s: float) -> ApiClient | None:
    """The client if it exists and is active (an answer is trusted `lifetime_s` per process)."""
    with _cache_lock:
        hit = _active_cache.get(client_id)
        if hit is not None and time.monotonic() - hit[0] < lifetime_s:
            return hit[1]
    with sessions.begin() as session:
        client = session.get(ApiClient, client_id)
        found = client if client is not None and client.active else None
    with _cache_lock:
        _active_cache[client_id] = (time.monotonic(), found)
    return found
