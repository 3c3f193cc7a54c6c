"""Webhook secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with the operator's key.

Signing needs the plain secret, so it is encrypted, not hashed; the key lives in settings
(`AIA_WEBHOOK_ENCRYPTION_KEY`), never in the database.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from aia_engine.errors import EngineError
from aia_engine.settings import Settings


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def _fernet(settings: Settings) -> Fernet:
    try:
        return Fernet(settings.webhook_encryption_key.get_secret_value().encode("ascii"))
    except ValueError as exc:
        raise EngineError(
            "AIA_WEBHOOK_ENCRYPTION_KEY is not a valid Fernet key; make one with "
            "`aia-engine webhook-key`"
        ) from exc


def encrypt(secret: str, settings: Settings) -> str:
    return _fernet(settings).encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt(token: str, settings: Settings) -> str:
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise EngineError(
            "a webhook secret cannot be decrypted with AIA_WEBHOOK_ENCRYPTION_KEY "
            "(was the key changed?)"
        ) from exc
