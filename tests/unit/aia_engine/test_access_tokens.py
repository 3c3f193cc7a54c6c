"""Access tokens signed with the server's own key but holding claims no request may carry are
refused as 401 (`Unauthenticated`), never an OverflowError or a database error later."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from aia_engine.auth.tokens import TOKEN_TYPE, decode_access_token, issue_access_token
from aia_engine.errors import Unauthenticated
from aia_engine.settings import Settings

SETTINGS = Settings(jwt_secret_key="unit-test-signing-key-" + "0123456789abcdef" * 4)


# The claims are made when a test runs, not when the module is imported: the suite may run for
# longer than a token lives.
def now() -> int:
    return int(datetime.now(UTC).timestamp())


def signed(**claims: Any) -> str:
    base: dict[str, Any] = {
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
        "sub": "aia_client",
        "scope": "read",
        "iat": now(),
        "nbf": now(),
        "exp": now() + 60,
        "jti": "j1",
    }
    base.update(claims)
    return jwt.encode(
        base,
        SETTINGS.jwt_secret_key.get_secret_value(),
        algorithm=SETTINGS.jwt_algorithm,
        headers={"kid": SETTINGS.jwt_key_id, "typ": TOKEN_TYPE},
    )


def test_a_token_the_server_issued_is_accepted() -> None:
    token, _ = issue_access_token("aia_client", ["read"], settings=SETTINGS, now=datetime.now(UTC))
    assert decode_access_token(token, settings=SETTINGS).client_id == "aia_client"


def test_a_fractional_exp_is_a_numeric_date_too() -> None:
    assert decode_access_token(signed(exp=now() + 60.5), settings=SETTINGS).client_id


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 1e300},
        {"exp": 10**30},
        {"exp": 2**64},
        {"exp": 253402300800},  # 10000-01-01: past what a datetime holds
        {"exp": "soon"},
        {"exp": True},
        {"nbf": 1e300},
        {"iat": 1e300},
        {"iat": -1e300},
        {"sub": "a\x00b"},
        {"sub": ""},
        {"sub": "x" * 200},
        {"jti": "j\x00"},
        {"scope": 5},
        {"scope": "read\x00"},
    ],
)
def test_claims_out_of_range_are_unauthenticated(claims: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        decode_access_token(signed(**claims), settings=SETTINGS)
