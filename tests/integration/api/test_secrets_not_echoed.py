"""No error echoes a secret: every secret-bearing field, sent in invalid forms to every place
that takes one, and the secret's value never appears in a response body or header."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import Credentials, LiveApi, token_for

SECRET = "S3cr3t-Value-Nobody-Echoes"  # long enough to pass a minimum, wrong everywhere


def leaked(r: httpx.Response, *values: str) -> list[str]:
    shown = r.text + json.dumps(dict(r.headers))
    return [v for v in values if v and v in shown]


def secret_forms(value: str) -> Iterator[Any]:
    """A secret in the invalid shapes a client might send it."""
    yield value[:10]  # too short
    yield value * 20  # too long
    yield [value]  # wrong type
    yield {"value": value}
    yield value + "\x00"  # unstorable


@pytest.fixture(scope="module")
def creds(make_client: Callable[..., Credentials]) -> Credentials:
    return make_client(scopes="read write")


@pytest.fixture(scope="module")
def http(live_api: LiveApi, creds: Credentials) -> Iterator[httpx.Client]:
    with live_api.client(headers={"Authorization": f"Bearer {token_for(live_api, creds)}"}) as c:
        yield c


def test_webhook_secrets_are_never_echoed(http: httpx.Client) -> None:
    url = "https://hooks.example/h"
    for secret in secret_forms(SECRET):
        bodies = [
            {"webhook_url": url, "events": ["task.completed"], "secret": secret},
            {"events": ["task.completed"], "secret": secret},  # error elsewhere: body echoed
            {"webhook_url": url, "events": ["nope"], "secret": secret},
            {"webhook_url": 5, "events": ["task.completed"], "secret": secret},
        ]
        for body in bodies:
            r = http.post("/webhooks/register", json=body)
            assert r.status_code == 422, (body, r.text)
            assert not leaked(r, SECRET[:10]), (body, r.text)
        r = http.patch("/webhooks/wh_missing", json={"secret": secret})  # not a PATCH field
        assert r.status_code == 422 and not leaked(r, SECRET[:10]), r.text


def test_password_like_fields_anywhere_in_a_body_are_never_echoed(http: httpx.Client) -> None:
    for name in ("password", "client_secret", "api_key", "access_token", "refresh_token", "token"):
        for url, body in [
            ("/tasks/submit", {"task_type": "data_analysis", name: SECRET}),
            ("/tasks/submit", {"context": {name: SECRET}}),  # missing task_type: body echoed
            ("/monitoring/track-user-activity", {"activity_type": "x", "details": {name: SECRET}}),
            ("/webhooks/register", {"webhook_url": "https://hooks.example/h", name: SECRET}),
        ]:
            r = http.post(url, json=body)
            assert r.status_code == 422, (url, body, r.text)
            assert not leaked(r, SECRET), (url, body, r.text)
        r = http.post("/tasks/batch-submit", json={"tasks": [{"context": {name: SECRET}}]})
        assert r.status_code in (200, 422) and not leaked(r, SECRET), r.text


def test_passwords_in_webhook_urls_are_never_echoed(http: httpx.Client) -> None:
    for url in (
        f"https://user:{SECRET}@hooks.example/h",
        f"https://{SECRET}@hooks.example/h",
        f"http://user:{SECRET}@127.0.0.1/",
    ):
        r = http.post("/webhooks/register", json={"webhook_url": url, "events": ["task.completed"]})
        assert r.status_code == 422, r.text
        assert not leaked(r, SECRET), r.text


def test_client_secrets_and_refresh_tokens_are_never_echoed(
    live_api: LiveApi, creds: Credentials
) -> None:
    bad = f"{SECRET}'\"<>\x7f%"
    with live_api.client() as anon:
        attempts = [
            {"data": {"grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": bad}},
            {"data": {"grant_type": "client_credentials", "client_id": bad, "client_secret": bad}},
            {"data": {"grant_type": "refresh_token", **creds.form(), "refresh_token": bad}},
            {"data": {"grant_type": "refresh_token", **creds.form(), "refresh_token": bad + "\x00"}},
            {"data": {"grant_type": "client_credentials", "client_secret": bad}},
            {"data": {"grant_type": "client_credentials"}, "auth": (creds.client_id, bad)},
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": f"Basic {bad}"}},
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": f"Bearer {bad}"}},
            {"data": {"grant_type": "client_credentials", "client_secret": bad}, "auth": (creds.client_id, bad)},
            {"content": f"grant_type=client_credentials&client_secret={bad}&client_secret={bad}",
             "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            {"json": {"grant_type": "client_credentials", "client_secret": bad}},
        ]  # fmt: skip
        for kwargs in attempts:
            for path in ("/auth/token", "/auth/revoke"):
                r = anon.post(path, **kwargs)
                assert 400 <= r.status_code < 500, (path, kwargs, r.text)
                assert not leaked(r, SECRET, creds.client_secret), (path, kwargs, r.text)
        r = anon.post("/auth/revoke", data={**creds.form(), "token": bad})
        assert not leaked(r, SECRET, creds.client_secret), r.text


def _jwt_like(payload: dict[str, Any]) -> str:
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'k1'})}.{part(payload)}.{SECRET}"


def test_bearer_tokens_are_never_echoed(live_api: LiveApi) -> None:
    tokens = [
        SECRET,
        f"{SECRET}.{SECRET}.{SECRET}",
        _jwt_like({"sub": SECRET}),
        _jwt_like({"sub": "x", "exp": 1e300, "iss": SECRET}),
        "eyJ" + SECRET,
    ]
    with live_api.client() as anon:
        for token in tokens:
            for header in (f"Bearer {token}", f"Basic {token}", token, f"Bearer  {token} x"):
                r = anon.get("/tasks", headers={"Authorization": header})
                assert r.status_code == 401, (header, r.text)
                assert not leaked(r, SECRET), (header, r.text, r.headers)
