"""Client secrets: generated at random, stored as Argon2id hashes, compared in constant time.

Pure apart from the CPU the hash costs. Parameters follow OWASP's Argon2id minimum (19 MiB,
2 passes, 1 lane), so the token endpoint stays usable on small machines.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def new_client_id() -> str:
    return f"aia_{secrets.token_hex(10)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _hasher().hash(secret)


# Verified against when the client does not exist, so an unknown id costs the same time.
_DUMMY_HASH: str | None = None


def verify_secret(secret: str, secret_hash: str | None) -> bool:
    """True when `secret` matches; always spends one Argon2 verification."""
    global _DUMMY_HASH
    if secret_hash is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_secret(new_secret())
        secret_hash, secret = _DUMMY_HASH, secret + "\0never"
    try:
        return _hasher().verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy opaque token (refresh tokens are stored only as this)."""
    return hashlib.sha256(token.encode()).hexdigest()
