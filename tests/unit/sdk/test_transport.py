"""The SDK's pure parts and its transport's rules, without a server: retry arithmetic,
`Retry-After`, the base URL and credentials, errors from each error form, which requests are
retried (and with the same idempotency key), and token renewal.

httpx.MockTransport stands in for the server only where the real API cannot give the answer on
demand (a 503 then a 200, an expired refresh token at a chosen moment); the integration tests
under tests/integration/sdk run the same paths against the real API.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aia_client import (
    AIAAuthenticationError,
    AIAConfigurationError,
    AIAConnectionError,
    AIANotFoundError,
    AIAServerError,
    AIASyncClient,
    AIAValidationError,
)
from aia_client._backoff import backoff_delay, retry_after
from aia_client._config import Config, resolve_base_url, resolve_credentials
from aia_client._sync._transport import SyncTransport
from aia_client.errors import error_for

URL = "http://api.test"


def test_backoff_is_full_jitter_within_a_doubling_capped_window() -> None:
    rng = random.Random(1)
    for attempt, window in [(1, 0.5), (2, 1.0), (3, 2.0), (8, 30.0), (20, 30.0)]:
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= window
        assert max(delays) > window * 0.8  # the whole window is used, not a fixed delay


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(answer("3")) == 3.0
    assert retry_after(answer(" 1.5 ")) == 1.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after(answer(later)) or 0) <= 30
    assert retry_after(answer("soon")) is None
    assert retry_after(httpx.Response(429)) is None
    assert retry_after(answer("-5")) == 0.0


def test_the_base_url_is_explicit_then_the_environments_variable_then_aia_base_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIA_BASE_URL", raising=False)
    monkeypatch.delenv("AIA_STAGING_BASE_URL", raising=False)
    monkeypatch.delenv("AIA_PRODUCTION_BASE_URL", raising=False)
    with pytest.raises(AIAConfigurationError, match="AIA_PRODUCTION_BASE_URL"):
        resolve_base_url(None, "production")
    assert resolve_base_url(None, "local") == "http://127.0.0.1:8000"
    monkeypatch.setenv("AIA_BASE_URL", "http://all.test/")
    assert resolve_base_url(None, "production") == "http://all.test"
    monkeypatch.setenv("AIA_STAGING_BASE_URL", "https://staging.test")
    assert resolve_base_url(None, "staging") == "https://staging.test"
    assert resolve_base_url("http://given.test", "staging") == "http://given.test"
    with pytest.raises(AIAConfigurationError, match="http"):
        resolve_base_url("ftp://x", "staging")
    with pytest.raises(AIAConfigurationError, match="not a name"):
        resolve_base_url(None, "../etc")


def test_credentials_come_from_the_arguments_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIA_CLIENT_ID", raising=False)
    monkeypatch.delenv("AIA_CLIENT_SECRET", raising=False)
    with pytest.raises(AIAConfigurationError, match="AIA_CLIENT_ID"):
        resolve_credentials(None, None)
    monkeypatch.setenv("AIA_CLIENT_ID", "cid")
    monkeypatch.setenv("AIA_CLIENT_SECRET", "sec")
    assert resolve_credentials(None, None) == ("cid", "sec")
    assert resolve_credentials("mine", "other") == ("mine", "other")


def test_errors_are_built_from_the_envelope_the_oauth_form_and_plain_text() -> None:
    envelope = {
        "error": {
            "type": "ValidationError",
            "code": "E001",
            "message": "task_type is required",
            "details": {"field": "task_type"},
            "request_id": "req_1",
        }
    }
    error = error_for(httpx.Response(422, json=envelope))
    assert isinstance(error, AIAValidationError)
    assert (error.status, error.code, error.details["field"], error.request_id) == (
        422,
        "E001",
        "task_type",
        "req_1",
    )
    assert error.error_type == "ValidationError" and "task_type is required" in str(error)
    oauth = error_for(
        httpx.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
    )
    assert isinstance(oauth, AIAAuthenticationError)
    assert oauth.code == "invalid_client" and oauth.message == "bad secret"
    plain = error_for(httpx.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(plain, AIAServerError) and plain.code is None and "502" in str(plain)
    assert isinstance(error_for(httpx.Response(404, json=envelope)), AIANotFoundError)


class Server:
    """The token endpoint (grants recorded) and a script of answers for everything else."""

    def __init__(self, *answers: httpx.Response | Exception, refresh_ok: bool = True) -> None:
        self.answers = list(answers)
        self.grants: list[str] = []
        self.seen: list[httpx.Request] = []
        self.refresh_ok = refresh_ok

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            form = parse_qs(request.content.decode())
            grant = form["grant_type"][0]
            self.grants.append(grant)
            if grant == "refresh_token" and not self.refresh_ok:
                return httpx.Response(400, json={"error": "invalid_grant"})
            n = len(self.grants)
            return httpx.Response(
                200,
                json={"access_token": f"t{n}", "expires_in": 3600, "refresh_token": f"r{n}"},
            )
        self.seen.append(request)
        answer = self.answers.pop(0) if self.answers else httpx.Response(200, json={})
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_of(server: Server, **options: Any) -> AIASyncClient:
    http = httpx.Client(base_url=URL, transport=httpx.MockTransport(server))
    return AIASyncClient("id", "secret", base_url=URL, http_client=http, **options)


def transport_of(server: Server) -> SyncTransport:
    config = Config(base_url=URL, client_id="id", client_secret="s", backoff_base=0.001)
    return SyncTransport(
        config, http=httpx.Client(base_url=URL, transport=httpx.MockTransport(server))
    )


UNAVAILABLE = httpx.Response(503, json={"error": {"code": "E503", "message": "busy"}})


def test_reads_and_keyed_creations_are_retried_with_the_same_key() -> None:
    server = Server(UNAVAILABLE, httpx.ReadError("cut"), httpx.Response(200, json={"ok": 1}))
    transport = transport_of(server)
    assert transport.request("GET", "/tasks").json() == {"ok": 1}
    assert len(server.seen) == 3
    server = Server(
        httpx.ReadTimeout("slow"), UNAVAILABLE, httpx.Response(200, json={"task_id": "task_1"})
    )
    transport = transport_of(server)
    transport.request("POST", "/tasks/submit", json={}, create=True)
    keys = {r.headers["idempotency-key"] for r in server.seen}
    assert len(server.seen) == 3 and len(keys) == 1 and keys.pop().startswith("aia-sdk-")


def test_a_post_without_a_key_is_not_resent_after_a_503_or_a_cut_answer() -> None:
    server = Server(UNAVAILABLE)
    with pytest.raises(AIAServerError):
        transport_of(server).request("POST", "/webhooks/register", json={})
    assert len(server.seen) == 1
    server = Server(httpx.ReadError("cut after sending"))
    with pytest.raises(AIAConnectionError):
        transport_of(server).request("POST", "/webhooks/register", json={})
    assert len(server.seen) == 1
    # A connection that never opened sent nothing: that is retried whatever the request.
    server = Server(httpx.ConnectError("refused"), httpx.Response(200, json={}))
    transport_of(server).request("POST", "/webhooks/register", json={})
    assert len(server.seen) == 2


def test_retries_are_bounded() -> None:
    server = Server(*[UNAVAILABLE] * 10)
    with pytest.raises(AIAServerError) as failed:
        transport_of(server).request("GET", "/tasks")
    assert failed.value.status == 503 and len(server.seen) == 4  # 1 + max_retries (3)


def test_an_expired_token_is_renewed_with_the_refresh_token_then_the_credentials() -> None:
    server = Server()
    transport = transport_of(server)
    transport.request("GET", "/tasks")
    transport._renew_at = 0.0  # the access token is about to expire
    transport.request("GET", "/tasks")
    assert server.grants == ["client_credentials", "refresh_token"]
    assert server.seen[-1].headers["authorization"] == "Bearer t2"
    server.refresh_ok = False  # the refresh token expired or was revoked
    transport._renew_at = 0.0
    transport.request("GET", "/tasks")
    assert server.grants[-2:] == ["refresh_token", "client_credentials"]
    assert server.seen[-1].headers["authorization"] == "Bearer t4"


def test_a_401_gets_a_new_token_and_the_request_once_more() -> None:
    refused = httpx.Response(401, json={"error": {"code": "E002", "message": "revoked"}})
    server = Server(refused, httpx.Response(200, json={}))
    transport_of(server).request("GET", "/tasks")
    assert [r.headers["authorization"] for r in server.seen] == ["Bearer t1", "Bearer t2"]
    server = Server(refused, refused)
    with pytest.raises(AIAAuthenticationError):
        transport_of(server).request("GET", "/tasks")
    assert len(server.seen) == 2  # once renewed, a second 401 is raised


def test_the_client_sends_its_user_agent() -> None:
    server = Server(httpx.Response(200, json={"status": "alive"}))
    with client_of(server) as client:
        client._transport.request("GET", "/health/live")
    assert server.seen[0].headers["user-agent"].startswith("aia-api-client/")
