"""The OAuth2 token endpoint's logic: client credentials, refresh rotation, revocation.

Errors are `OAuthError`, rendered in RFC 6749 §5.2's flat form by the API. A refresh token is
single-use: using it rotates it; presenting a rotated token again revokes its whole family
(every token descended from the same client-credentials grant), as RFC 9700 recommends.
Access tokens carry their family (`fam`); a revoked family's are refused from then on, in every
API process (`revocation.RevokedFamilies`, told here once the revocation is committed).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from aia_engine.auth.hashing import token_digest, verify_secret
from aia_engine.auth.revocation import RevokedFamilies
from aia_engine.auth.scopes import format_scopes
from aia_engine.auth.tokens import issue_access_token
from aia_engine.clock import utcnow
from aia_engine.db.models import ApiClient, RefreshToken
from aia_engine.db.session import Sessions
from aia_engine.settings import Settings


class OAuthError(Exception):
    """Raised for a token-endpoint error; `error` is one of RFC 6749's codes."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class ClientAuth:
    client_id: str
    client_secret: str
    via_basic: bool


def authenticate(sessions: Sessions, auth: ClientAuth) -> ApiClient:
    with sessions.begin() as session:
        client = session.get(ApiClient, auth.client_id)
        stored = client.secret_hash if client is not None else None
    ok = verify_secret(auth.client_secret, stored)
    if client is None or not ok or not client.active:
        raise OAuthError("invalid_client", "client authentication failed", status=401)
    return client


def _granted_scopes(client: ApiClient, requested: str | None) -> list[str]:
    if requested is None or not requested.strip():
        return list(client.scopes)
    wanted = requested.split()
    extra = [s for s in wanted if s not in client.scopes]
    if extra:
        raise OAuthError("invalid_scope", f"scope {extra[0]!r} is not granted to this client")
    return [s for s in client.scopes if s in wanted]


def _token_response(
    sessions: Sessions,
    client: ApiClient,
    scopes: list[str],
    *,
    family: str,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    access, lifetime = issue_access_token(
        client.client_id, scopes, settings=settings, now=now, family=family
    )
    refresh = f"rt_{secrets.token_urlsafe(32)}"
    with sessions.begin() as session:
        session.add(
            RefreshToken(
                token_hash=token_digest(refresh),
                client_id=client.client_id,
                family_id=family,
                scope=format_scopes(scopes),
                created_at=now,
                expires_at=now + timedelta(days=settings.refresh_token_days),
            )
        )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": format_scopes(scopes),
        "refresh_token": refresh,
    }


def client_credentials_grant(
    sessions: Sessions, auth: ClientAuth, scope: str | None, *, settings: Settings
) -> dict[str, Any]:
    client = authenticate(sessions, auth)
    scopes = _granted_scopes(client, scope)
    return _token_response(
        sessions, client, scopes, family=secrets.token_hex(16), settings=settings, now=utcnow()
    )


def refresh_grant(
    sessions: Sessions,
    auth: ClientAuth,
    refresh_token: str | None,
    scope: str | None,
    *,
    settings: Settings,
    revoked: RevokedFamilies | None = None,
) -> dict[str, Any]:
    client = authenticate(sessions, auth)
    if not refresh_token:
        raise OAuthError(
            "invalid_request", "refresh_token is required for grant_type=refresh_token"
        )
    now = utcnow()
    reused = False
    with sessions.begin() as session:
        row = session.scalars(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_digest(refresh_token))
            .with_for_update()
        ).one_or_none()
        if row is None or row.client_id != client.client_id:
            raise OAuthError("invalid_grant", "refresh token is unknown")
        if row.revoked_at is not None or row.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh token is revoked or expired")
        if row.rotated_at is not None:
            # Reuse of a rotated token: someone else holds the family. Revoke all of it, and
            # commit that before answering.
            _revoke_family(session, row.family_id, now)
            reused = True
        else:
            row.rotated_at = now
        family, granted = row.family_id, row.scope.split()
    if reused:
        if revoked is not None:
            revoked.announce(family)
        raise OAuthError(
            "invalid_grant", "refresh token was already used; its whole family is revoked"
        )
    if scope:
        extra = [s for s in scope.split() if s not in granted]
        if extra:
            raise OAuthError("invalid_scope", f"scope {extra[0]!r} exceeds the original grant")
        granted = [s for s in granted if s in scope.split()]
    return _token_response(sessions, client, granted, family=family, settings=settings, now=now)


def revoke_token(
    sessions: Sessions,
    auth: ClientAuth,
    token: str | None,
    *,
    revoked: RevokedFamilies | None = None,
) -> None:
    """RFC 7009: revoke a refresh token (and its family, access tokens included); unknown tokens
    are not an error."""
    client = authenticate(sessions, auth)
    if not token:
        raise OAuthError("invalid_request", "token is required")
    now = utcnow()
    family = None
    with sessions.begin() as session:
        row = session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
        ).one_or_none()
        if row is not None and row.client_id == client.client_id:
            _revoke_family(session, row.family_id, now)
            family = row.family_id
    if family is not None and revoked is not None:
        revoked.announce(family)


def _revoke_family(session: Any, family_id: str, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
