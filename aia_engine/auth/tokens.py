"""JWT access tokens: issue and decode. Pure: settings and clock are arguments.

Pinned algorithm; `iss`, `aud`, `exp`, `iat`, `nbf`, `jti` required; `kid` selects one of the
configured keys (the current one signs, previous ones still verify during rotation); the header
`typ` must be `at+jwt` (RFC 9068), so no other JWT signed with the same key is accepted.
A token from a grant carries `fam`, its refresh-token family, so that revoking the family
refuses it too (`revocation`); tokens issued before this claim existed have none.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from aia_engine.errors import Unauthenticated
from aia_engine.settings import Settings

TOKEN_TYPE = "at+jwt"
_MAX_CLAIM_CHARS = 128  # client ids, jti and scope lists the server issues are far shorter


@dataclass(frozen=True)
class AccessClaims:
    client_id: str
    scopes: list[str]
    jti: str
    expires_at: datetime
    family: str | None = None
    """The refresh-token family the token was issued with (None: issued without a grant)."""


def signing_keys(settings: Settings) -> dict[str, str]:
    keys = {kid: key.get_secret_value() for kid, key in settings.jwt_previous_keys.items()}
    keys[settings.jwt_key_id] = settings.jwt_secret_key.get_secret_value()
    return keys


def issue_access_token(
    client_id: str,
    scopes: list[str],
    *,
    settings: Settings,
    now: datetime,
    family: str | None = None,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds; `family`: its refresh-token family."""
    lifetime = settings.jwt_expiry_minutes * 60
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": client_id,
        "scope": " ".join(scopes),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": secrets.token_hex(16),
    }
    if family is not None:
        claims["fam"] = family
    token = jwt.encode(
        claims,
        signing_keys(settings)[settings.jwt_key_id],
        algorithm=settings.jwt_algorithm,
        headers={"kid": settings.jwt_key_id, "typ": TOKEN_TYPE},
    )
    return token, lifetime


class VerifiedTokens:
    """Tokens already verified by this process, until they expire (bounded LRU).

    A client reuses its token for every request until it expires; verifying the signature
    once per token instead of once per request saves the hot path a JWT decode. Client
    state (disabled, deleted) is still checked on every request by the caller.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[str, AccessClaims] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> AccessClaims | None:
        with self._lock:
            claims = self._items.get(token)
            if claims is None:
                return None
            if claims.expires_at.timestamp() <= now:
                del self._items[token]
                return None
            self._items.move_to_end(token)
            return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        with self._lock:
            self._items[token] = claims
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def decode_access_token(token: str, *, settings: Settings) -> AccessClaims:
    """Verify `token`; any problem is `Unauthenticated` with a reason fit for the client."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthenticated("access token is malformed", reason="malformed") from exc
    if header.get("alg") != settings.jwt_algorithm:
        raise Unauthenticated(
            "access token uses an algorithm this API does not accept", reason="alg"
        )
    if header.get("typ") != TOKEN_TYPE:
        raise Unauthenticated("token is not an access token", reason="typ")
    key = signing_keys(settings).get(str(header.get("kid")))
    if key is None:
        raise Unauthenticated("access token was signed with an unknown key", reason="kid")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated(
            "access token has expired; request a new one", reason="expired"
        ) from exc
    except jwt.ImmatureSignatureError as exc:
        raise Unauthenticated("access token is not valid yet", reason="nbf") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"access token is invalid: {exc}", reason="invalid") from exc
    return _checked_claims(claims)


# The latest time a datetime holds (9999-12-31); NumericDates beyond it cannot be compared.
_LAST_SECOND = 253_402_300_799


def _checked_claims(claims: dict[str, Any]) -> AccessClaims:
    """The claims as `AccessClaims`, once each is of a type and range this API issues. The
    signature proves the key signed them, not that they are sane: `exp: 1e300` overflows a
    datetime, a NUL in `sub` fails the client lookup."""
    dates = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
    for name, value in dates.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= _LAST_SECOND
        ):
            raise Unauthenticated(f"access token's {name} is out of range", reason="claims")
    texts = {name: claims.get(name) for name in ("sub", "jti", "scope")}
    for name, value in texts.items():
        if not isinstance(value, str) or "\x00" in value or len(value) > _MAX_CLAIM_CHARS:
            raise Unauthenticated(f"access token's {name} is malformed", reason="claims")
    if not texts["sub"]:
        raise Unauthenticated("access token's sub is malformed", reason="claims")
    family = claims.get("fam")
    if family is not None and (
        not isinstance(family, str) or "\x00" in family or len(family) > _MAX_CLAIM_CHARS
    ):
        raise Unauthenticated("access token's fam is malformed", reason="claims")
    return AccessClaims(
        client_id=str(texts["sub"]),
        scopes=str(texts["scope"]).split(),
        jti=str(texts["jti"]),
        expires_at=datetime.fromtimestamp(int(dates["exp"] or 0), UTC),
        family=family,
    )
