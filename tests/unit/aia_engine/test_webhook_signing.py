"""Signatures that the guide's Flask handler and the standardwebhooks package both accept."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from aia_engine.webhooks.signing import (
    SignatureError,
    sign_headers,
    standard_webhooks_secret,
    verify,
)

SECRET = "your_webhook_secret"
BODY = json.dumps(
    {"event_type": "task.completed", "data": {"task_id": "task_1", "results": {}}}
).encode()


def verify_webhook_signature(payload: bytes, signature: str, secret: str) -> bool:
    """The guide's receiver function, unchanged."""
    expected_signature = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected_signature}", signature)


def test_the_guides_verifier_accepts_our_header() -> None:
    headers = sign_headers([SECRET], msg_id="evt_1", timestamp=int(time.time()), body=BODY)
    assert verify_webhook_signature(BODY, headers["X-AIA-Signature"], SECRET)
    assert not verify_webhook_signature(BODY + b" ", headers["X-AIA-Signature"], SECRET)


def test_standardwebhooks_accepts_the_same_delivery() -> None:
    headers = sign_headers([SECRET], msg_id="evt_1", timestamp=int(time.time()), body=BODY)
    assert Webhook(standard_webhooks_secret(SECRET)).verify(BODY, headers) == json.loads(BODY)


def test_standardwebhooks_rejects_a_replay_older_than_five_minutes() -> None:
    old = int(time.time()) - 301
    headers = sign_headers([SECRET], msg_id="evt_1", timestamp=old, body=BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(standard_webhooks_secret(SECRET)).verify(BODY, headers)
    with pytest.raises(SignatureError, match="300s"):
        verify(SECRET, headers, BODY, now=int(time.time()))


def test_both_secrets_sign_during_rotation() -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = sign_headers(["new-secret", SECRET], msg_id="evt_2", timestamp=now, body=BODY)
    for secret in ("new-secret", SECRET):
        Webhook(standard_webhooks_secret(secret)).verify(BODY, headers)
        verify(secret, headers, BODY, now=now)
    assert verify_webhook_signature(BODY, headers["X-AIA-Signature"], "new-secret")
    assert verify_webhook_signature(BODY, headers["X-AIA-Signature-Previous"], SECRET)
    with pytest.raises(SignatureError):
        verify("someone-else", headers, BODY, now=now)


def test_tampered_body_fails_both_ways() -> None:
    now = int(time.time())
    headers = sign_headers([SECRET], msg_id="evt_3", timestamp=now, body=BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_webhooks_secret(SECRET)).verify(
            BODY.replace(b"task_1", b"task_2"), headers
        )
    with pytest.raises(SignatureError):
        verify(SECRET, headers, BODY.replace(b"task_1", b"task_2"), now=now)
