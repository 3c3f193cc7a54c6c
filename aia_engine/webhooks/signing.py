"""Signing webhook deliveries, two ways on the same request. Pure.

* The API guide's header, which its Flask `verify_webhook_signature` checks:
  `X-AIA-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
* Standard Webhooks: `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, several
  space-separated signatures while a secret rotates. The key is the UTF-8 bytes of the secret;
  the `standardwebhooks` package takes it as `standard_webhooks_secret(secret)` ("whsec_" +
  base64 of those bytes).

Receivers should reject a timestamp more than `TOLERANCE_S` (5 minutes) away from their clock
and de-duplicate on `webhook-id` (deliveries are at least once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence

TOLERANCE_S = 300


class SignatureError(Exception):
    """Raised when a delivery's signature or timestamp does not verify."""


def aia_signature(secret: str, body: bytes) -> str:
    """The guide's `X-AIA-Signature` value."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_webhooks_secret(secret: str) -> str:
    """The secret in the form the `standardwebhooks` package's `Webhook(...)` expects."""
    return "whsec_" + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def standard_signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_headers(
    secrets: Sequence[str], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers for one delivery attempt. `secrets[0]` is current; later ones are still in their
    rotation grace period and sign too (Standard Webhooks lists every signature; the guide's
    single-valued header carries the current one, `X-AIA-Signature-Previous` the older ones)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    headers = {
        "X-AIA-Signature": aia_signature(secrets[0], body),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
        ),
    }
    if len(secrets) > 1:
        headers["X-AIA-Signature-Previous"] = " ".join(aia_signature(s, body) for s in secrets[1:])
    return headers


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> None:
    """Check a delivery as a receiver should: Standard Webhooks signature and timestamp
    tolerance, and the guide's header. Raises `SignatureError`."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, stamp = lower["webhook-id"], int(lower["webhook-timestamp"])
        given = lower["webhook-signature"].split(" ")
    except (KeyError, ValueError) as exc:
        raise SignatureError("missing or malformed webhook headers") from exc
    if abs(now - stamp) > TOLERANCE_S:
        raise SignatureError(f"timestamp {stamp} is more than {TOLERANCE_S}s from now ({now})")
    expected = standard_signature(secret, msg_id=msg_id, timestamp=stamp, body=body)
    if not any(hmac.compare_digest(expected, sig) for sig in given):
        raise SignatureError("no webhook-signature matches")
    aia = lower.get("x-aia-signature", "")
    if not hmac.compare_digest(aia_signature(secret, body), aia):
        previous = lower.get("x-aia-signature-previous", "").split()
        if not any(hmac.compare_digest(aia_signature(secret, body), p) for p in previous):
            raise SignatureError("X-AIA-Signature does not match")
