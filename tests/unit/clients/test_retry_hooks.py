"""The transport's waits as a script sees them (what the batch CLI needs from the SDK):
`on_retry` hears each wait and why, `max_rate_limit_retries=None` waits a quota out however
long, `cancel()` ends a wait at once from another thread, and a chunk too big is halved.

A fake server (httpx.MockTransport) stands in where a real one cannot give these answers on
demand (a 503 then a 502, ten 429s in a row); tests/integration/ops/test_batch_cli.py runs
the same paths against the real API."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from aia_client import AIACancelledError, AIAClient, AIASyncClient
from aia_client._config import Config
from aia_client._sync._transport import SyncTransport
from aia_client.errors import AIAConnectionError, AIARateLimitError, AIAServerError

URL = "http://api.test"


class Fake:
    """Answers /auth/token itself and hands every other request the next of `answers`."""

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


def err(
    status: int, code: str = "E000", retry_after: str | None = None, **details: Any
) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": code, "message": "no", "details": details}}
    return httpx.Response(status, json=body, headers=headers)


def transport(fake: Fake, waits: list[tuple[str, float]], **options: Any) -> SyncTransport:
    config = Config(
        base_url=URL,
        client_id="id",
        client_secret="secret",
        backoff_base=0.001,
        backoff_max=0.004,
        on_retry=lambda reason, seconds: waits.append((reason, seconds)),
        **options,
    )
    return SyncTransport(
        config, http=httpx.Client(base_url=URL, transport=httpx.MockTransport(fake))
    )


def test_on_retry_hears_each_gateway_and_network_wait_and_why() -> None:
    waits: list[tuple[str, float]] = []
    fake = Fake(err(503), httpx.ConnectError("refused"), err(502), httpx.Response(200, json={}))
    api = transport(fake, waits)
    assert api.request("GET", "/tasks").status_code == 200
    assert [reason for reason, _ in waits] == [
        "HTTP 503", "network error (ConnectError)", "HTTP 502",
    ]  # fmt: skip
    assert all(0 <= seconds <= 0.004 for _, seconds in waits)
    bounded = Fake(*[httpx.ConnectError("refused")] * 3)
    with pytest.raises(AIAConnectionError) as raised:
        transport(bounded, [], max_retries=2).request("GET", "/tasks")
    assert raised.value.status == 0 and len(bounded.seen) == 3


def test_no_rate_limit_bound_waits_every_429_out_and_says_which() -> None:
    waits: list[tuple[str, float]] = []
    limited = [err(429, "E011", retry_after="0")] * 2 + [
        err(429, "E013", "0", limit=5, requested=3)
    ] * 10
    fake = Fake(*limited, httpx.Response(200, json={}))
    api = transport(fake, waits, max_rate_limit_retries=None)
    assert api.request("POST", "/tasks/batch-submit", json={}).status_code == 200
    assert [r for r, _ in waits] == ["rate limited (E011)"] * 2 + ["rate limited (E013)"] * 10
    # The default stays bounded: the sixth 429 in a row is raised, with its Retry-After
    fake = Fake(*[err(429, "E011", retry_after="0")] * 6)
    with pytest.raises(AIARateLimitError) as raised:
        transport(fake, []).request("GET", "/tasks")
    assert raised.value.retry_after == 0 and len(fake.seen) == 6


def test_a_batch_larger_than_the_whole_quota_is_raised_at_once_even_without_a_bound() -> None:
    waits: list[tuple[str, float]] = []
    fake = Fake(err(429, "E013", retry_after="1", limit=10, requested=11))
    with pytest.raises(AIARateLimitError):
        transport(fake, waits, max_rate_limit_retries=None).request("POST", "/tasks/batch-submit")
    assert not waits and len(fake.seen) == 1


def test_cancel_from_another_thread_ends_a_long_wait_at_once_and_nothing_more_is_sent() -> None:
    waits: list[tuple[str, float]] = []
    fake = Fake(err(429, "E011", retry_after="30"), httpx.Response(200, json={}))
    api = transport(fake, waits, max_rate_limit_retries=None)
    timer = threading.Timer(0.2, api.cancel)
    timer.start()
    began = time.monotonic()
    with pytest.raises(AIACancelledError):
        api.request("GET", "/tasks")
    assert time.monotonic() - began < 5 and waits[0][1] >= 30
    with pytest.raises(AIACancelledError):
        api.request("GET", "/tasks")
    assert len(fake.seen) == 1


def test_the_async_client_takes_the_same_options_and_cancel() -> None:
    waits: list[tuple[str, float]] = []
    fake = Fake(err(503, retry_after="30"), httpx.Response(200, json={}))

    async def run() -> None:
        http = httpx.AsyncClient(base_url=URL, transport=httpx.MockTransport(fake))
        async with AIAClient("id", "secret", base_url=URL, http_client=http,
                             max_rate_limit_retries=None, on_retry=lambda r, s: waits.append((r, s))) as client:  # fmt: skip
            asyncio.get_running_loop().call_later(0.2, client.cancel)
            with pytest.raises(AIACancelledError):
                await client.tasks.get("task_1")

    began = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - began < 5 and waits and waits[0][0] == "HTTP 503"


def test_submit_batch_halves_a_chunk_too_big_and_numbers_results_from_start() -> None:
    sizes: list[int] = []

    def fake(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        items = json.loads(request.content)["tasks"]
        sizes.append(len(items))
        if len(items) > 2:
            return httpx.Response(413, json={"error": {"code": "E400", "message": "too big"}})
        results: list[dict[str, Any]] = [
            {"index": i, "status": "rejected", "error": {"message": "bad"}}
            if item["task_type"] == "bad"
            else {
                "index": i,
                "status": "accepted",
                "task_id": item["idempotency_key"],
                "created": True,
            }
            for i, item in enumerate(items)
        ]
        return httpx.Response(200, json={"accepted": 0, "rejected": 0, "results": results})

    http = httpx.Client(base_url=URL, transport=httpx.MockTransport(fake))
    tasks = [
        {"task_type": "bad" if n == 3 else str(n), "idempotency_key": f"k{n}"} for n in range(1, 6)
    ]
    with AIASyncClient("id", "secret", base_url=URL, http_client=http) as client:
        items = client.tasks.submit_batch(tasks, start=10)
        assert sizes == [5, 2, 3, 1, 2]
        assert [(i.index, i.status, i.task_id) for i in items] == [
            (10, "accepted", "k1"), (11, "accepted", "k2"), (12, "rejected", None),
            (13, "accepted", "k4"), (14, "accepted", "k5"),
        ]  # fmt: skip
        sizes.clear()
        keyless = client.tasks.submit_batch([{"task_type": "a"}, {"task_type": "b"}])
        first, second = (str(item.task_id) for item in keyless)
        assert first != second and first.startswith("aia-sdk-") and second.startswith("aia-sdk-")


def test_an_error_that_is_not_too_big_is_raised_for_the_chunk() -> None:
    fake = Fake(err(500, "E500"))
    http = httpx.Client(base_url=URL, transport=httpx.MockTransport(fake))
    with (
        AIASyncClient("id", "secret", base_url=URL, http_client=http, max_retries=0) as client,
        pytest.raises(AIAServerError),
    ):
        client.tasks.submit_batch([{"task_type": "a", "idempotency_key": "k"}])
