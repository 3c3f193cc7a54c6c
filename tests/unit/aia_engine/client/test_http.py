"""`ApiClient`'s own logic against a fake server (httpx.MockTransport): tokens, and which
answers it retries, after how long, and which it raises."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from aia_engine.client.http import ApiClient, ApiError

Handler = Callable[[httpx.Request], httpx.Response]


class Fake:
    """A fake API: answers /auth/token itself, hands every other request to `answers` in turn."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.tokens = 0
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            self.tokens += 1
            return httpx.Response(200, json={"access_token": f"t{self.tokens}", "expires_in": 3600})
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


Waits = list[tuple[str, float]]


@pytest.fixture
def waits() -> Waits:
    return []


def client(fake: Fake, waits: Waits, **kwargs: float) -> ApiClient:
    api = ApiClient(
        "http://api.test", "id", "secret", on_wait=lambda r, s: waits.append((r, s)), **kwargs
    )
    api._http.close()
    api._http = httpx.Client(base_url=api.url, transport=httpx.MockTransport(fake))
    # No real waiting: the waits are recorded by on_wait, the cancel event answers at once.
    api._cancelled.wait = lambda _s=None: api._cancelled.is_set()  # type: ignore[method-assign]
    return api


def err(status: int, code: str = "E000", **details: object) -> httpx.Response:
    body = {"error": {"code": code, "message": "no", "details": details}}
    return httpx.Response(status, json=body)


def test_gateway_errors_are_retried_with_exponential_backoff(waits: Waits) -> None:
    fake = Fake(err(503), err(502), err(504), httpx.Response(200, json={"ok": 1}))
    with client(fake, waits, backoff_s=0.5) as api:
        assert api.request("GET", "/tasks") == {"ok": 1}
    assert waits == [("HTTP 503", 0.5), ("HTTP 502", 1.0), ("HTTP 504", 2.0)]
    assert fake.tokens == 1 and all(r.headers["Authorization"] == "Bearer t1" for r in fake.seen)


def test_backoff_is_capped_and_retries_are_bounded(waits: Waits) -> None:
    fake = Fake(*[err(503)] * 4)
    api = client(fake, waits, backoff_s=1, max_retries=3, max_wait_s=3)
    with api, pytest.raises(ApiError) as raised:
        api.request("GET", "/tasks")
    assert raised.value.status == 503 and len(fake.seen) == 4
    assert [s for _, s in waits] == [1, 2, 3]  # 4 s capped at max_wait_s


def test_network_errors_are_retried_then_raised_as_status_0(waits: Waits) -> None:
    fake = Fake(*[httpx.ConnectError("refused")] * 3)
    api = client(fake, waits, backoff_s=0.1, max_retries=2)
    with api, pytest.raises(ApiError) as raised:
        api.request("GET", "/tasks")
    assert raised.value.status == 0 and "ConnectError" in str(raised.value)
    assert [r for r, _ in waits] == ["network error"] * 2


def test_429_waits_as_long_as_retry_after_says_and_never_gives_up(waits: Waits) -> None:
    limited = [err(429, "E011"), err(429, "E011")]
    limited[0].headers["Retry-After"] = "2.5"
    limited[1].headers["Retry-After"] = "soon"  # unreadable: a second
    fake = Fake(*limited, *[err(429, "E013")] * 10, httpx.Response(200, json={}))
    with client(fake, waits, max_retries=1) as api:
        assert api.request("POST", "/tasks/submit", json={}) == {}
    assert waits[:2] == [("E011", 2.5), ("E011", 1.0)] and len(waits) == 12


def test_a_request_larger_than_the_whole_quota_is_raised_at_once(waits: Waits) -> None:
    fake = Fake(err(429, "E013", limit=10, requested=11))
    with client(fake, waits) as api, pytest.raises(ApiError) as raised:
        api.request("POST", "/tasks/batch-submit", json={})
    assert raised.value.status == 429 and not waits


def test_401_renews_the_token_once(waits: Waits) -> None:
    fake = Fake(err(401), httpx.Response(200, json={"ok": 1}), err(401), err(401))
    with client(fake, waits) as api:
        assert api.request("GET", "/a") == {"ok": 1}
        with pytest.raises(ApiError) as raised:
            api.request("GET", "/b")
    assert raised.value.status == 401 and fake.tokens == 3
    assert [r.headers["Authorization"] for r in fake.seen] == [
        "Bearer t1", "Bearer t2", "Bearer t2", "Bearer t3",
    ]  # fmt: skip


def test_other_errors_are_raised_with_the_envelope(waits: Waits) -> None:
    fake = Fake(err(422, "E002", field="x"), httpx.Response(500, text="<html>oops"))
    with client(fake, waits) as api:
        with pytest.raises(ApiError) as raised:
            api.request("POST", "/tasks/submit", json={})
        assert (
            raised.value.error["code"] == "E002" and raised.value.error["details"]["field"] == "x"
        )
        with pytest.raises(ApiError) as raised:
            api.request("GET", "/x")
        assert raised.value.status == 500 and raised.value.error == {"message": "<html>oops"}
    assert not waits


def test_cancel_makes_a_waiting_retry_give_up(waits: Waits) -> None:
    fake = Fake(err(503), err(503))
    with client(fake, waits) as api:
        api.cancel()
        with pytest.raises(ApiError, match="cancelled"):
            api.request("GET", "/tasks")
    assert len(fake.seen) == 1


def test_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="AIA_CLIENT_ID"):
        ApiClient("http://api.test", "", "secret")
