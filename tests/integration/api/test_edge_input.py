"""Input PostgreSQL or Python cannot take answers 4xx in the envelope, never 500: NUL characters
in paths, query values, form fields and JSON bodies; non-ASCII digits; integer literals past
Python's 4,300-digit limit; numbers that overflow to infinity; activity figures past their range."""

from __future__ import annotations

import base64
import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.openapi import openapi_document
from tests.integration.api.conftest import Credentials, LiveApi, token_for

JSON = {"Content-Type": "application/json"}


def envelope_code(r: httpx.Response) -> str:
    body = r.json()
    assert set(body["error"]) >= {"type", "message", "code", "details", "request_id"}, r.text
    return str(body["error"]["code"])


@pytest.fixture(scope="module")
def http(live_api: LiveApi, make_client: Callable[..., Credentials]) -> Iterator[httpx.Client]:
    token = token_for(live_api, make_client(scopes="read write"))
    # Closed when the module ends: a client left to the garbage collector would be reported as
    # an unclosed socket in whichever test runs when it is collected.
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def operations() -> list[tuple[str, str, list[dict[str, Any]]]]:
    found = []
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            found.append((method.upper(), path, op.get("parameters", [])))
    return found


def test_nul_in_any_path_parameter_is_404_in_the_envelope(http: httpx.Client) -> None:
    tried = 0
    for method, path, params in operations():
        names = [p["name"] for p in params if p["in"] == "path"]
        if not names:
            continue
        url = path
        for name in names:
            url = url.replace("{" + name + "}", "a%00b")
        r = http.request(method, url, timeout=10)
        assert r.status_code == 404, (method, url, r.status_code, r.text[:300])
        assert envelope_code(r) == "E004"
        tried += 1
    assert tried >= 12


def test_nul_in_any_query_value_or_name_is_422_naming_the_parameter(http: httpx.Client) -> None:
    tried = 0
    for method, path, params in operations():
        url = re.sub(r"\{[^}]+\}", "x", path)
        for p in params:
            if p["in"] != "query":
                continue
            r = http.request(method, url, params={p["name"]: "a\x00b"}, timeout=10)
            assert r.status_code == 422, (method, url, p["name"], r.text[:300])
            assert envelope_code(r) == "E001"
            assert r.json()["error"]["details"]["field"] == p["name"]
            tried += 1
    assert tried >= 8
    for url in ("/tasks?%00=1", "/tasks?task_type=%00", "/quotas?x=%00", "/health?x=%00"):
        r = http.get(url)
        assert r.status_code == 422 and envelope_code(r) == "E001", (url, r.text)


def test_the_guides_examples_of_nul(http: httpx.Client) -> None:
    for url, status in [
        ("/tasks/%00", 404),
        ("/tasks?task_type=%00", 422),
        ("/webhooks/%00", 404),
        ("/monitoring/user-analytics/%00", 404),
        ("/tasks%00", 404),
    ]:
        r = http.get(url)
        assert r.status_code == status, (url, r.text)
        envelope_code(r)


def test_nul_in_oauth_form_fields_and_basic_credentials_is_an_oauth_error(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    forms = [
        {"grant_type": "client_credentials", "client_id": "a\x00", "client_secret": "x"},
        {"grant_type": "client_credentials", **creds.form(), "scope": "read\x00"},
        {"grant_type": "refresh_token", **creds.form(), "refresh_token": "rt_\x00"},
    ]
    with live_api.client() as anon:
        for form in forms:
            r = anon.post("/auth/token", data=form)
            assert r.status_code in (400, 401), (form, r.text)
            assert r.json()["error"] in ("invalid_request", "invalid_client"), r.text
        r = anon.post("/auth/revoke", data={**creds.form(), "token": "rt_\x00"})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
        r = anon.post(
            "/auth/token", data={"grant_type": "client_credentials"}, auth=("a\x00", "secret")
        )
        assert r.status_code in (400, 401) and r.json()["error"] in (
            "invalid_request",
            "invalid_client",
        ), r.text


def test_a_cursor_that_decodes_to_a_nul_is_422(http: httpx.Client) -> None:
    forged = json.dumps(["2020-01-01T00:00:00+00:00", "task_\u0000"]).encode()
    r = http.get("/tasks", params={"cursor": base64.urlsafe_b64encode(forged).decode()})
    assert r.status_code == 422 and envelope_code(r) == "E001", r.text


@pytest.mark.parametrize(
    "digit", ["\u00b2", "\u0663", "\uff11"]
)  # superscript 2, Arabic 3, full-width 1
def test_non_ascii_digits_in_numeric_parameters_are_422(http: httpx.Client, digit: str) -> None:
    for url, params in [
        ("/tasks", {"limit": digit}),
        ("/webhooks/wh_x/deliveries", {"limit": digit}),
    ]:
        r = http.get(url, params=params)
        assert r.status_code in (404, 422), (url, digit, r.text)
        envelope_code(r)
    with http.stream("GET", "/tasks/stream", params={"last_event_id": digit}) as r:
        assert r.status_code == 422, (digit, r.read())


def test_nul_in_a_header_is_refused_by_the_server(live_api: LiveApi) -> None:
    # httpx refuses to send it, so write the request by hand.
    parts = urlsplit(live_api.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-User-ID: a\x00b\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_integer_literals_past_4300_digits_are_400_on_every_json_body(http: httpx.Client) -> None:
    huge = "9" * 5000
    for method, url, template in [
        ("POST", "/tasks/submit", '{"task_type": "data_analysis", "requirements": {"n": %s}}'),
        ("POST", "/tasks/orchestrate", '{"task_type": "x", "workflow": {"a": {"agent": "noop", "retries": %s}}}'),
        ("POST", "/tasks/batch-submit", '{"tasks": [{"task_type": "data_analysis", "priority": %s}]}'),
        ("POST", "/webhooks/register", '{"webhook_url": "https://hooks.example/h", "events": %s}'),
        ("PATCH", "/webhooks/wh_x", '{"active": %s}'),
        ("POST", "/monitoring/track-user-activity", '{"user_id": "u", "activity_type": "x", "details": {"bytes_transferred": -%s}}'),
    ]:  # fmt: skip
        r = http.request(method, url, content=template.replace("%s", huge), headers=JSON)
        assert r.status_code == 400, (url, r.status_code, r.text[:300])
        assert envelope_code(r) == "E400"
        assert "4300 digits" in r.json()["error"]["message"]


def test_numbers_that_overflow_to_infinity_are_400(http: httpx.Client) -> None:
    for literal in ("1e999", "-1e999", "1.5e400"):
        body = '{"task_type": "data_analysis", "requirements": {"x": NUMBER}}'.replace(
            "NUMBER", literal
        )
        r = http.post("/tasks/submit", content=body, headers=JSON)
        assert r.status_code == 400 and envelope_code(r) == "E400", (literal, r.text)
        assert "requirements.x" in r.json()["error"]["details"].get("field", ""), r.text


def test_nul_and_lone_surrogates_in_json_strings_are_422_naming_the_field(
    http: httpx.Client,
) -> None:
    cases = [
        ("POST", "/tasks/submit", {"task_type": "data_analysis", "description": "a\x00b"}, "description"),
        ("POST", "/tasks/submit", {"task_type": "data_analysis", "requirements": {"k\x00": 1}}, "requirements"),
        ("POST", "/tasks/submit", {"task_type": "data_analysis", "requirements": {"k": ["x", "\x00"]}}, "requirements.k.1"),
        ("POST", "/tasks/submit", {"task_type": "data_\x00analysis"}, "task_type"),
        ("POST", "/tasks/orchestrate", {"task_type": "t", "workflow": {"a\x00": {"agent": "noop"}}}, "workflow"),
        ("POST", "/tasks/batch-submit", {"tasks": [{"task_type": "data_analysis", "context": {"c": "\x00"}}]}, "tasks.0.context.c"),
        ("POST", "/webhooks/register", {"webhook_url": "https://hooks.example/\x00", "events": ["task.completed"]}, "webhook_url"),
        ("PATCH", "/webhooks/wh_x", {"webhook_url": "https://hooks.example/\x00"}, "webhook_url"),
        ("POST", "/monitoring/track-user-activity", {"user_id": "u\x00", "activity_type": "x"}, "user_id"),
        ("POST", "/monitoring/track-user-activity", {"user_id": "u", "activity_type": "x", "details": {"endpoint": "/\x00"}}, "details.endpoint"),
        ("POST", "/monitoring/track-user-activity", {"user_id": "u", "activity_type": "x", "details": {"extra\x00": 1}}, "details"),
        ("POST", "/monitoring/track-user-activity", {"user_id": "u", "activity_type": "x", "context": {"v": "\ud801x"}}, "context.v"),
    ]  # fmt: skip
    for method, url, body, field in cases:
        raw = json.dumps(body)  # \u0000 and \ud801 escaped, as a client would send them
        r = http.request(method, url, content=raw, headers=JSON)
        assert r.status_code == 422, (url, body, r.status_code, r.text[:300])
        assert envelope_code(r) == "E001"
        assert r.json()["error"]["details"]["field"] == field, (body, r.text)


def test_activity_figures_outside_their_documented_ranges_are_422(http: httpx.Client) -> None:
    base = {"user_id": "u-range", "activity_type": "api_request"}
    for details, field in [
        ({"bytes_transferred": 2**70}, "details.bytes_transferred"),
        ({"bytes_transferred": 2**53}, "details.bytes_transferred"),
        ({"bytes_transferred": -1}, "details.bytes_transferred"),
        ({"response_time": 1e308}, "details.response_time"),
        ({"response_time": 86_400_001}, "details.response_time"),
        ({"response_time": -0.5}, "details.response_time"),
        ({"status_code": 600}, "details.status_code"),
    ]:
        r = http.post("/monitoring/track-user-activity", json={**base, "details": details})
        assert r.status_code == 422, (details, r.text)
        assert r.json()["error"]["details"]["field"] == field
    at_limits = {"bytes_transferred": 2**53 - 1, "response_time": 86_400_000, "status_code": 599}
    r = http.post("/monitoring/track-user-activity", json={**base, "details": at_limits})
    assert r.status_code == 201, r.text
    r = http.get("/monitoring/user-analytics/u-range")
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["data_transferred_bytes"] == 2**53 - 1


def test_activity_ranges_are_in_the_openapi_document() -> None:
    details = openapi_document()["components"]["schemas"]["ActivityDetails"]["properties"]
    assert details["bytes_transferred"]["anyOf"][0]["maximum"] == 2**53 - 1
    assert details["response_time"]["anyOf"][0]["maximum"] == 86_400_000
    assert details["status_code"]["anyOf"][0]["maximum"] == 599
