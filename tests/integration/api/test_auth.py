"""The token endpoint (RFC 6749 errors), forged tokens, scopes, refresh rotation and revocation."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import redis
from sqlalchemy import text

from aia_engine.auth.clients import forget_active_clients, set_active
from aia_engine.auth.tokens import issue_access_token
from aia_engine.embedded import free_port
from api.app import create_app
from tests.conftest import flush_redis, popen_to_log, wait_http_up
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import ROOT, Services, _empty_redis_db, _stop


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def creds(make_client: Callable[..., Credentials]) -> Credentials:
    return make_client(scopes="read write")


def post_token(api: LiveApi, **kwargs: Any) -> httpx.Response:
    with api.client() as http:
        return http.post("/auth/token", **kwargs)


def test_client_credentials_by_form_answer_the_guides_shape(
    live_api: LiveApi, creds: Credentials
) -> None:
    r = post_token(live_api, data=creds.form(grant_type="client_credentials", scope="read write"))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert (
        body["token_type"] == "Bearer"
        and body["scope"] == "read write"
        and body["expires_in"] == 3600
    )
    assert r.headers["cache-control"] == "no-store"
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["kid"] == "k1" and header["alg"] == "HS256"


def test_client_credentials_by_basic(live_api: LiveApi, creds: Credentials) -> None:
    r = post_token(
        live_api,
        data={"grant_type": "client_credentials"},
        headers=basic(creds.client_id, creds.client_secret),
    )
    assert r.status_code == 200 and r.json()["scope"] == "read write"


def test_scope_can_be_narrowed(live_api: LiveApi, creds: Credentials) -> None:
    r = post_token(live_api, data=creds.form(grant_type="client_credentials", scope="read"))
    assert r.json()["scope"] == "read"


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("both", 400, "invalid_request"),
        ("wrong_secret_form", 401, "invalid_client"),
        ("wrong_secret_basic", 401, "invalid_client"),
        ("unknown_client", 401, "invalid_client"),
        ("bad_grant", 400, "unsupported_grant_type"),
        ("no_grant", 400, "invalid_request"),
        ("bad_scope", 400, "invalid_scope"),
        ("unknown_scope", 400, "invalid_scope"),
        ("json_body", 400, "invalid_request"),
        ("get", 405, "invalid_request"),
        ("no_credentials", 401, "invalid_client"),
    ],
)
def test_token_endpoint_error_matrix(
    live_api: LiveApi, creds: Credentials, case: str, status: int, error: str
) -> None:
    grant = {"grant_type": "client_credentials"}
    with live_api.client() as http:
        r = {
            "both": lambda: http.post(
                "/auth/token",
                data=creds.form(**grant),
                headers=basic(creds.client_id, creds.client_secret),
            ),
            "wrong_secret_form": lambda: http.post(
                "/auth/token", data={**creds.form(**grant), "client_secret": "nope"}
            ),
            "wrong_secret_basic": lambda: http.post(
                "/auth/token", data=grant, headers=basic(creds.client_id, "nope")
            ),
            "unknown_client": lambda: http.post(
                "/auth/token", data={**grant, "client_id": "aia_ghost", "client_secret": "x"}
            ),
            "bad_grant": lambda: http.post("/auth/token", data=creds.form(grant_type="password")),
            "no_grant": lambda: http.post("/auth/token", data=creds.form()),
            "bad_scope": lambda: http.post(
                "/auth/token", data=creds.form(**grant, scope="read admin")
            ),
            "unknown_scope": lambda: http.post(
                "/auth/token", data=creds.form(**grant, scope="superuser")
            ),
            "json_body": lambda: http.post("/auth/token", json=creds.form(**grant)),
            "get": lambda: http.get("/auth/token"),
            "no_credentials": lambda: http.post("/auth/token", data=grant),
        }[case]()
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and r.json()["error_description"]
    assert r.headers["cache-control"] == "no-store"
    if case == "wrong_secret_basic":
        assert r.headers["www-authenticate"].startswith("Basic")


def test_disabled_client_gets_no_token_and_its_tokens_stop_working(
    live_api: LiveApi, services: Services, creds: Credentials
) -> None:
    token = token_for(live_api, creds)
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/tasks").status_code == 200  # "active" is now cached in the process
        # Disabled by another process (the CLI elsewhere): this one trusts its answer for
        # AIA_CLIENT_CACHE_S, then asks PostgreSQL again; forgetting stands for that wait.
        with services.sessions.begin() as session:
            session.execute(
                text("UPDATE api_clients SET active = false WHERE client_id = :c"),
                {"c": creds.client_id},
            )
        assert http.get("/tasks").status_code == 200
        forget_active_clients()
        assert http.get("/tasks").status_code == 401
    set_active(services.sessions, creds.client_id, False)  # and in this process: at once
    r = post_token(live_api, data=creds.form(grant_type="client_credentials"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def _forge(services: Services, creds: Credentials, case: str) -> str:
    s = services.settings
    now = datetime.now(UTC)
    good = {
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
        "sub": creds.client_id,
        "scope": "read write",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "x",
    }
    key = s.jwt_secret_key.get_secret_value()
    head = {"kid": s.jwt_key_id, "typ": "at+jwt"}
    if case == "alg_none":
        return jwt.encode(good, None, algorithm="none", headers=head)
    if case == "wrong_key":
        return jwt.encode(
            good, "another-secret-entirely-32-bytes!", algorithm="HS256", headers=head
        )
    if case == "wrong_aud":
        return jwt.encode({**good, "aud": "someone-else"}, key, algorithm="HS256", headers=head)
    if case == "wrong_iss":
        return jwt.encode({**good, "iss": "evil"}, key, algorithm="HS256", headers=head)
    if case == "expired":
        return jwt.encode(
            {**good, "exp": int((now - timedelta(seconds=5)).timestamp())},
            key,
            algorithm="HS256",
            headers=head,
        )
    if case == "future_nbf":
        return jwt.encode(
            {**good, "nbf": int((now + timedelta(minutes=2)).timestamp())},
            key,
            algorithm="HS256",
            headers=head,
        )
    if case == "unknown_kid":
        return jwt.encode(good, key, algorithm="HS256", headers={**head, "kid": "k99"})
    if case == "wrong_typ":
        return jwt.encode(good, key, algorithm="HS256", headers={**head, "typ": "JWT"})
    if case == "stripped_signature":
        token, _ = issue_access_token(creds.client_id, ["read", "write"], settings=s, now=now)
        return token.rsplit(".", 1)[0] + "."
    if case == "other_alg":
        return jwt.encode(good, key, algorithm="HS512", headers=head)
    if case == "garbage":
        return "not.a.jwt"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "wrong_key",
        "wrong_aud",
        "wrong_iss",
        "expired",
        "future_nbf",
        "unknown_kid",
        "wrong_typ",
        "stripped_signature",
        "other_alg",
        "garbage",
    ],
)
def test_forged_tokens_are_rejected(
    live_api: LiveApi, services: Services, creds: Credentials, case: str
) -> None:
    with live_api.client(
        headers={"Authorization": f"Bearer {_forge(services, creds, case)}"}
    ) as http:
        r = http.get("/tasks")
    assert r.status_code == 401, (case, r.text)
    assert r.json()["error"]["code"] == "E401"
    assert r.headers["www-authenticate"].startswith('Bearer realm="aia", error="invalid_token"')


def test_missing_token_and_wrong_scheme(live_api: LiveApi) -> None:
    with live_api.client() as http:
        missing = http.get("/tasks")
        wrong = http.get("/tasks", headers={"Authorization": "Token abc"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="aia"'


def test_read_scope_cannot_write(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    reader = make_client(scopes="read")
    with live_api.client(
        headers={"Authorization": f"Bearer {token_for(live_api, reader)}"}
    ) as http:
        assert http.get("/tasks").status_code == 200
        r = http.post("/tasks/submit", json={"task_type": "noop"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "E403"
    assert (
        'error="insufficient_scope"' in r.headers["www-authenticate"]
        and 'scope="write"' in r.headers["www-authenticate"]
    )


def test_rotated_keys_still_verify(services: Services, creds: Credentials) -> None:
    old = services.settings.model_copy(update={"jwt_key_id": "k0"})
    token, _ = issue_access_token(creds.client_id, ["read"], settings=old, now=datetime.now(UTC))
    rotated = services.settings.model_copy(
        update={"jwt_previous_keys": {"k0": services.settings.jwt_secret_key}}
    )
    app = create_app(rotated)
    server, thread, url = serve(app)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            assert http.get("/tasks").status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def refresh(api: LiveApi, creds: Credentials, token: str) -> httpx.Response:
    return post_token(api, data=creds.form(grant_type="refresh_token", refresh_token=token))


def test_refresh_rotates_and_reuse_revokes_the_family(
    live_api: LiveApi, creds: Credentials
) -> None:
    first = post_token(live_api, data=creds.form(grant_type="client_credentials")).json()
    second = refresh(live_api, creds, first["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    reuse = refresh(live_api, creds, first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # the family is gone: the newest token no longer works either
    assert (
        refresh(live_api, creds, second.json()["refresh_token"]).json()["error"] == "invalid_grant"
    )


def test_twenty_concurrent_refreshes_exactly_one_wins(
    live_api: LiveApi, creds: Credentials
) -> None:
    start = post_token(live_api, data=creds.form(grant_type="client_credentials")).json()[
        "refresh_token"
    ]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: refresh(live_api, creds, start).status_code, range(20)))
    assert answers.count(200) == 1 and answers.count(400) == 19, answers


def test_refresh_token_of_another_client_is_refused(
    live_api: LiveApi, creds: Credentials, make_client: Callable[..., Credentials]
) -> None:
    mine = post_token(live_api, data=creds.form(grant_type="client_credentials")).json()[
        "refresh_token"
    ]
    other = make_client()
    assert refresh(live_api, other, mine).json()["error"] == "invalid_grant"


def test_revoke_kills_the_refresh_family(live_api: LiveApi, creds: Credentials) -> None:
    tokens = post_token(live_api, data=creds.form(grant_type="client_credentials")).json()
    with live_api.client() as http:
        r = http.post("/auth/revoke", data=creds.form(token=tokens["refresh_token"]))
        unknown = http.post("/auth/revoke", data=creds.form(token="rt_unknown"))
    assert r.status_code == 200 and unknown.status_code == 200
    assert refresh(live_api, creds, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_token_endpoint_is_rate_limited_per_client_before_hashing(
    services: Services, creds: Credentials
) -> None:
    limited = services.settings.model_copy(
        update={"token_rate_per_client": 3, "token_rate_per_ip": 1000}
    )
    client = redis.Redis.from_url(services.redis_url)
    for key in client.scan_iter("aia:token-rate:*"):
        client.delete(key)
    server, thread, url = serve(create_app(limited))
    try:
        with httpx.Client(base_url=url) as http:
            codes = [
                http.post(
                    "/auth/token",
                    data={**creds.form(grant_type="client_credentials"), "client_secret": "wrong"},
                ).status_code
                for _ in range(5)
            ]
            last = http.post("/auth/token", data=creds.form(grant_type="client_credentials"))
    finally:
        server.should_exit = True
        thread.join(10)
    assert codes == [401, 401, 401, 429, 429]
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0
    assert last.json()["error"] == "rate_limited"


# -- issue 12: access tokens of a revoked refresh-token family ------------------------------


def _api_on(services: Services, port: int, redis_url: str) -> subprocess.Popen[bytes]:
    """An API process of its own. The background reload from PostgreSQL is slowed to a minute,
    so what these tests see at once comes from Redis or from the startup load, not from it."""
    env = {**services.env, "REDIS_URL": redis_url, "AIA_REVOCATION_POLL_S": "60"}
    log = services.tmp / f"revocation-api-{port}.log"
    proc = popen_to_log(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, log=log,
    )  # fmt: skip
    wait_http_up(proc, f"http://127.0.0.1:{port}/health", log)
    return proc


@dataclass
class Apis:
    redis_url: str
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]

    def start(self, services: Services) -> str:
        port = free_port()
        self.procs.append(_api_on(services, port, self.redis_url))
        self.urls.append(f"http://127.0.0.1:{port}")
        return self.urls[-1]


@pytest.fixture
def two_apis(services: Services) -> Iterator[Apis]:
    """Two API processes sharing PostgreSQL and a Redis database of their own (flushed here)."""
    apis = Apis(_empty_redis_db(services.redis_url), [], [])
    try:
        apis.start(services)
        apis.start(services)
        yield apis
    finally:
        for proc in apis.procs:
            _stop(proc)
        flush_redis(apis.redis_url)


def _grant(url: str, creds: Credentials, **form: str) -> httpx.Response:
    return httpx.post(f"{url}/auth/token", data=creds.form(**form))


def _tasks(url: str, access_token: str) -> httpx.Response:
    return httpx.get(f"{url}/tasks", headers={"Authorization": f"Bearer {access_token}"})


def _assert_refused(url: str, access_token: str) -> None:
    r = _tasks(url, access_token)
    assert r.status_code == 401, (url, r.text)
    error = r.json()["error"]
    assert error["code"] == "E401" and "revoked" in error["message"], error
    assert r.headers["www-authenticate"].startswith('Bearer realm="aia", error="invalid_token"')


def test_revoke_refuses_the_familys_access_tokens_on_every_process_even_after_a_flush(
    services: Services, two_apis: Apis, creds: Credentials
) -> None:
    a, b = two_apis.urls
    doomed = _grant(a, creds, grant_type="client_credentials").json()
    kept = _grant(b, creds, grant_type="client_credentials").json()
    for url in (a, b):  # both work everywhere (and each process has verified both once)
        assert _tasks(url, doomed["access_token"]).status_code == 200
        assert _tasks(url, kept["access_token"]).status_code == 200
    revoked = httpx.post(f"{a}/auth/revoke", data=creds.form(token=doomed["refresh_token"]))
    assert revoked.status_code == 200
    for url in (b, a):  # the very next request, on the other process first
        _assert_refused(url, doomed["access_token"])
        assert _tasks(url, kept["access_token"]).status_code == 200
    flush_redis(two_apis.redis_url)
    for url in (a, b):
        _assert_refused(url, doomed["access_token"])
        assert _tasks(url, kept["access_token"]).status_code == 200
    c = two_apis.start(services)  # a process started after the flush knows it from PostgreSQL
    _assert_refused(c, doomed["access_token"])
    assert _tasks(c, kept["access_token"]).status_code == 200


def test_refresh_reuse_refuses_the_familys_access_tokens_even_if_redis_is_flushed_at_once(
    services: Services, two_apis: Apis, creds: Credentials
) -> None:
    a, b = two_apis.urls
    first = _grant(a, creds, grant_type="client_credentials").json()
    second = _grant(a, creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    other = _grant(a, creds, grant_type="client_credentials").json()
    for url in (a, b):
        assert _tasks(url, first["access_token"]).status_code == 200
        assert _tasks(url, second.json()["access_token"]).status_code == 200
    reuse = _grant(a, creds, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # Redis loses everything before process B has ever seen this revocation: still refused
    # on B's next request (B notices the loss and reloads from PostgreSQL once).
    flush_redis(two_apis.redis_url)
    for url in (b, a):
        _assert_refused(url, second.json()["access_token"])
        _assert_refused(url, first["access_token"])
        assert _tasks(url, other["access_token"]).status_code == 200
