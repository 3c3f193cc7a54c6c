"""Access tokens: what the server issues it accepts until expiry, and nothing else (another key,
audience or issuer, a refresh-token type, a retired key id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from aia_engine.auth.tokens import (
    TOKEN_TYPE,
    AccessClaims,
    VerifiedTokens,
    decode_access_token,
    issue_access_token,
)
from aia_engine.errors import Unauthenticated
from aia_engine.settings import Settings

KEY = "unit-test-signing-key-" + "0123456789abcdef" * 4
SETTINGS = Settings(jwt_secret_key=KEY)


def issued(settings: Settings = SETTINGS, *, at: datetime | None = None) -> str:
    token, _ = issue_access_token(
        "aia_client", ["read", "write"], settings=settings, now=at or datetime.now(UTC)
    )
    return token


def refused(token: str, settings: Settings = SETTINGS) -> str:
    with pytest.raises(Unauthenticated) as raised:
        decode_access_token(token, settings=settings)
    return str(raised.value.details.get("reason"))


def test_an_issued_token_verifies_with_its_claims() -> None:
    now = datetime.now(UTC)
    token, lifetime = issue_access_token(
        "aia_client", ["read", "write"], settings=SETTINGS, now=now, family="fam1"
    )
    claims = decode_access_token(token, settings=SETTINGS)
    assert lifetime == SETTINGS.jwt_expiry_minutes * 60
    assert claims.client_id == "aia_client" and claims.scopes == ["read", "write"]
    assert claims.family == "fam1" and len(claims.jti) == 32
    assert claims.expires_at == datetime.fromtimestamp(int(now.timestamp()) + lifetime, UTC)
    assert jwt.get_unverified_header(token)["typ"] == TOKEN_TYPE


def test_each_token_has_its_own_id() -> None:
    assert decode_access_token(issued(), settings=SETTINGS).jti != (
        decode_access_token(issued(), settings=SETTINGS).jti
    )


def test_an_expired_token_is_refused_as_expired() -> None:
    lived = timedelta(minutes=SETTINGS.jwt_expiry_minutes, seconds=1)
    assert refused(issued(at=datetime.now(UTC) - lived)) == "expired"


def test_a_token_from_the_future_is_not_valid_yet() -> None:
    assert refused(issued(at=datetime.now(UTC) + timedelta(minutes=5))) == "nbf"


def test_a_token_signed_with_another_key_is_forged() -> None:
    other = Settings(jwt_secret_key="another-signing-key-" + "fedcba9876543210" * 4)
    assert refused(issued(other)) == "invalid"


def test_a_token_for_another_audience_or_issuer_is_refused() -> None:
    assert refused(issued(SETTINGS.model_copy(update={"jwt_audience": "elsewhere"}))) == "invalid"
    assert refused(issued(SETTINGS.model_copy(update={"jwt_issuer": "someone-else"}))) == "invalid"


def test_an_altered_payload_breaks_the_signature() -> None:
    token = issued()
    head, _, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["scope"] = "read write admin"
    forged_body = jwt.encode(claims, KEY, algorithm="HS256").split(".")[1]
    assert refused(f"{head}.{forged_body}.{sig}") == "invalid"


def test_header_checks_come_before_the_signature() -> None:
    claims = jwt.decode(issued(), options={"verify_signature": False})
    assert refused("not-a-jwt") == "malformed"
    assert refused(jwt.encode(claims, KEY + "x" * 16, algorithm="HS512")) == "alg"
    assert refused(jwt.encode(claims, KEY, algorithm="HS256", headers={"typ": "JWT"})) == "typ"
    unknown = {"kid": "retired", "typ": TOKEN_TYPE}
    assert refused(jwt.encode(claims, KEY, algorithm="HS256", headers=unknown)) == "kid"


def test_a_previous_key_still_verifies_during_rotation() -> None:
    old = issued()  # signed as k1
    rotated = Settings(
        jwt_secret_key="the-new-signing-key-" + "0011223344556677" * 4,
        jwt_key_id="k2",
        jwt_previous_keys={"k1": KEY},
    )
    assert decode_access_token(old, settings=rotated).client_id == "aia_client"
    assert refused(old, Settings(jwt_secret_key=rotated.jwt_secret_key, jwt_key_id="k2")) == "kid"


def test_verified_tokens_forget_expired_and_oldest_entries() -> None:
    cache = VerifiedTokens(size=2)
    at = datetime(2030, 1, 1, tzinfo=UTC)

    def claims(n: int) -> AccessClaims:
        return AccessClaims(f"c{n}", ["read"], f"j{n}", at)

    cache.put("a", claims(1))
    cache.put("b", claims(2))
    assert cache.get("a", at.timestamp() - 1) == claims(1)  # "a" is now the newest
    cache.put("c", claims(3))  # so "b" goes
    assert cache.get("b", 0) is None and cache.get("a", 0) == claims(1)
    assert cache.get("a", at.timestamp()) is None  # expired: gone
    assert cache.get("a", 0) is None
