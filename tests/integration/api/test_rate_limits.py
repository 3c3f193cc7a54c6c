"""Tiered rate limits: exact bucket/minute/hour behaviour per tier with an injectable clock,
headers on every response, two API processes sharing one limit, Redis down under load."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from aia_engine.db.models import SystemAlert, Task
from aia_engine.embedded import free_port, start_redis
from aia_engine.limits.bucket import Decision
from aia_engine.limits.limiter import RateLimiter
from aia_engine.redis.connect import multiplexed
from aia_engine.tiers import DEFAULT_TIERS
from api.app import create_app
from tests.conftest import popen_to_log, wait_http_up, wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import ROOT, Services, _stop

pytestmark = pytest.mark.timeout(180)


class Clock:
    def __init__(self) -> None:
        # the second second of a clock hour well ahead: every window starts fresh
        self.now = (int(time.time()) // 3600 + 2) * 3600 + 1.0

    def __call__(self) -> float:
        return self.now


async def hits(limiter: RateLimiter, client: str, tier: str, n: int) -> list[Decision]:
    out: list[Decision] = []
    for start in range(0, n, 500):
        out += await asyncio.gather(
            *(limiter.hit(client, tier) for _ in range(min(500, n - start)))
        )
    return out


@pytest.mark.parametrize("tier", list(DEFAULT_TIERS))
def test_burst_then_per_minute_then_hourly_cap(tier: str, services: Services) -> None:
    limits = DEFAULT_TIERS[tier]
    clock = Clock()

    async def scenario() -> None:
        client = multiplexed(services.redis_url)
        limiter = RateLimiter(client, DEFAULT_TIERS, clock=clock)
        who = f"rl-{tier}-{secrets.token_hex(4)}"
        got = await hits(limiter, who, tier, limits.burst + 1)
        assert sum(d.allowed for d in got) == limits.burst  # exactly the burst at once
        (denied,) = [d for d in got if not d.allowed]
        assert denied.retry_after == -(-60 // limits.per_minute)
        # each admitted request saw its own count: no two were given the same place
        assert sorted(d.remaining for d in got if d.allowed) == list(
            range(limits.per_hour - limits.burst, limits.per_hour)
        )
        used = limits.burst
        while used < limits.per_hour:
            clock.now += 60  # a minute later: exactly the per-minute rate
            got = await hits(limiter, who, tier, limits.per_minute + 1)
            admitted = sum(d.allowed for d in got)
            assert admitted == min(limits.per_minute, limits.per_hour - used), (used, admitted)
            used += admitted
        clock.now += 600  # tokens galore, but the hour's cap holds
        last = await limiter.hit(who, tier)
        assert not last.allowed and last.remaining == 0
        assert last.retry_after == last.window_reset - int(clock.now)
        clock.now += last.retry_after  # sleeping Retry-After, then retrying, succeeds
        assert (await limiter.hit(who, tier)).allowed
        await client.close()

    asyncio.run(scenario())


def test_retry_after_on_an_empty_bucket_is_enough(services: Services) -> None:
    clock = Clock()

    async def scenario() -> None:
        client = multiplexed(services.redis_url)
        limiter = RateLimiter(client, DEFAULT_TIERS, clock=clock)
        who = f"rl-sleep-{secrets.token_hex(4)}"
        await hits(limiter, who, "free", 20)
        denied = await limiter.hit(who, "free")
        assert not denied.allowed and denied.retry_after == 6  # 10/min: a token each 6 s
        clock.now += denied.retry_after - 1
        assert not (await limiter.hit(who, "free")).allowed
        clock.now += 1
        assert (await limiter.hit(who, "free")).allowed
        await client.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def limited_api(services: Services) -> LiveApi:
    settings = services.settings.model_copy(update={"rate_limit_tiers": dict(DEFAULT_TIERS)})
    app = create_app(settings)
    server, thread, url = serve(app)
    api = LiveApi(url, app, server)
    yield api  # type: ignore[misc]
    server.should_exit = True
    thread.join(10)


def test_headers_on_2xx_4xx_and_429(
    limited_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client(tier="free")
    token = token_for(limited_api, creds)
    seen: list[httpx.Response] = []
    with limited_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        seen.append(http.get("/tasks"))  # 200
        seen.append(http.get("/tasks/task_nope"))  # 404
        seen.append(http.post("/tasks/submit", json={"task_type": 5}))  # 422
        while seen[-1].status_code != 429:
            seen.append(http.get("/tasks"))
            assert len(seen) < 30
    statuses = {r.status_code for r in seen}
    assert {200, 404, 422, 429} <= statuses
    for r in seen:
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                       "X-RateLimit-Window", "RateLimit", "RateLimit-Policy"):  # fmt: skip
            assert header in r.headers, (r.status_code, header)
        assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Window"] == "3600"
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in seen]
    assert remaining == sorted(remaining, reverse=True)
    assert len(seen) == 21  # the free tier's burst of 20, then 429
    limited = seen[-1]
    assert int(limited.headers["Retry-After"]) >= 1
    body = limited.json()["error"]
    assert body["code"] == "E429" and body["type"] == "RateLimitExceeded"
    assert body["details"]["tier"] == "free"
    assert "q=100;w=3600" in limited.headers["RateLimit-Policy"]


def _api_process(services: Services, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **services.env,
        "AIA_RATE_LIMIT_TIERS": json.dumps({k: v.model_dump() for k, v in DEFAULT_TIERS.items()}),
    }
    proc = popen_to_log(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, log=log,
    )  # fmt: skip
    wait_http_up(proc, f"http://127.0.0.1:{port}/health", log)
    return proc


def test_two_api_processes_share_one_limit(
    services: Services, make_client: Callable[..., Credentials]
) -> None:
    ports = [free_port(), free_port()]
    procs = [_api_process(services, p, services.tmp / f"api-{p}.log") for p in ports]
    try:
        creds = make_client(tier="free")
        r = httpx.post(
            f"http://127.0.0.1:{ports[0]}/auth/token",
            data=creds.form(grant_type="client_credentials"),
        )
        token = r.json()["access_token"]
        clients = [
            httpx.Client(
                base_url=f"http://127.0.0.1:{p}", headers={"Authorization": f"Bearer {token}"}
            )
            for p in ports
        ]
        started = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(lambda i: clients[i % 2].get("/tasks").status_code, range(100)))
        elapsed = time.monotonic() - started
        refill = int(elapsed * 10 / 60)  # the free tier refills 10 a minute
        assert set(codes) <= {200, 429}
        assert 20 <= codes.count(200) <= 20 + refill, (codes.count(200), elapsed)
        for c in clients:
            c.close()
    finally:
        for p in procs:
            _stop(p)


def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    wait_until(condition, what, timeout=timeout, interval=0.02)


def test_redis_down_under_load(services: Services, make_client: Callable[..., Credentials]) -> None:
    """Redis stops while requests flow (until a few hundred were decided without it): at least
    99 % are not 5xx, the alert fires, and the shared limiter is back once Redis is."""
    data = services.tmp / f"redis-{secrets.token_hex(3)}"
    port = free_port()
    url, redis_proc = start_redis(data, port=port)
    settings = services.settings.model_copy(update={"redis_url": url})
    app = create_app(settings)
    server, thread, base = serve(app)
    limiter = app.state.resources.limiter
    creds = make_client(tier="enterprise", scopes="read write admin")
    with httpx.Client(base_url=base) as anon:
        token = anon.post("/auth/token", data=creds.form(grant_type="client_credentials")).json()[
            "access_token"
        ]
    codes: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            while not stop.is_set():
                try:
                    codes.append(http.get("/tasks", params={"limit": 1}).status_code)
                except httpx.HTTPError:
                    codes.append(599)
                time.sleep(0.01)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        until(lambda: len(codes) >= 100, "requests flowing through the shared limiter")
        assert not limiter.degraded
        redis_proc.send_signal(signal.SIGTERM)
        redis_proc.wait(10)
        down_at = len(codes)
        # Down for as long as it takes a few hundred requests to be decided in the process
        until(
            lambda: limiter.degraded and limiter.fallback_decisions >= 200,
            "the limiter degraded, deciding in the process",
        )
        assert len(codes) > down_at
        _, redis_proc = start_redis(data, port=port)
        until(lambda: not limiter.degraded, "the limiter back on Redis")
        back_at = len(codes)
        until(lambda: len(codes) >= back_at + 50, "requests after Redis returned")
    finally:
        stop.set()
        for w in workers:
            w.join(15)
    try:
        server_errors = sum(c >= 500 for c in codes)
        assert len(codes) > 200 and server_errors / len(codes) <= 0.01, (server_errors, len(codes))
        assert not limiter.degraded  # back on the shared limiter
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            scraped = http.get("/metrics/prometheus").text
        fallback = next(
            line for line in scraped.splitlines()
            if line.startswith("aia_rate_limiter_fallback_decisions{")
        )  # fmt: skip
        assert float(fallback.rsplit(" ", 1)[1]) == limiter.fallback_decisions > 0

        def degraded_alerts() -> list[SystemAlert]:
            with services.sessions.begin() as session:
                return list(
                    session.scalars(
                        select(SystemAlert).where(SystemAlert.alert_type == "rate_limiter_degraded")
                    )
                )

        found = wait_until(
            degraded_alerts, "the rate_limiter_degraded alert", timeout=10, interval=0.2
        )
        assert len(found) == 1
    finally:
        server.should_exit = True
        thread.join(10)
        redis_proc.terminate()
        redis_proc.wait(10)  # reaped: else an unraisable "subprocess is still running"
        from workers.app import use_redis

        use_redis(services.redis_url)  # create_app pointed the shared Celery app elsewhere


SLOW = {
    "task_type": "custom",
    "description": "quota test",
    "workflow": {"wait": {"agent": "test_noop", "dependencies": [], "params": {"sleep_s": 60}}},
}


def test_600_concurrent_submissions_against_a_500_cap_admit_exactly_500(
    limited_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    creds = make_client(tier="enterprise")
    token = token_for(limited_api, creds)
    http = httpx.Client(
        base_url=limited_api.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    # half of them through a second API process: the cap holds across processes
    port = free_port()
    second = _api_process(services, port, services.tmp / f"quota-api-{port}.log")
    other = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    try:
        with ThreadPoolExecutor(32) as pool:
            answers = list(
                pool.map(
                    lambda i: (http if i % 2 else other).post("/tasks/orchestrate", json=SLOW),
                    range(600),
                )
            )
        _stop(second)
        other.close()
        codes = [a.status_code for a in answers]
        assert codes.count(200) == 500 and codes.count(429) == 100, sorted(set(codes))
        refused = next(a for a in answers if a.status_code == 429).json()["error"]
        assert refused["code"] == "E013" and refused["details"]["limit"] == 500
        quotas = http.get("/quotas").json()
        assert "active_tasks" in quotas, quotas
        assert quotas["active_tasks"] == {"limit": 500, "active": 500, "remaining": 0}
        assert quotas["tier"] == "enterprise" and quotas["requests"]["limit_per_hour"] == 100_000
        # a batch counts each item: no room for two
        two = http.post("/tasks/batch-submit", json={"tasks": [SLOW, SLOW]})
        assert two.status_code == 429 and two.json()["error"]["code"] == "E013"
        ids = [a.json()["task_id"] for a in answers if a.status_code == 200]
        assert http.post(f"/tasks/{ids[0]}/cancel").status_code == 200
        assert http.post("/tasks/batch-submit", json={"tasks": [SLOW, SLOW]}).status_code == 429
        one = http.post("/tasks/batch-submit", json={"tasks": [SLOW]})
        assert one.status_code == 200, one.text
        ids.append(one.json()["results"][0]["task_id"])
        assert http.get("/quotas").json()["active_tasks"]["active"] == 500
    finally:
        from aia_engine.tasks.control import cancel_task
        from workers.dispatch import CeleryPublisher

        publisher = CeleryPublisher.from_settings(services.settings)
        with services.sessions.begin() as session:
            active = session.scalars(
                select(Task.id).where(
                    Task.client_id == creds.client_id,
                    Task.status.in_(("accepted", "queued", "in_progress")),
                )
            ).all()
        for task_id in active:
            cancel_task(services.sessions, publisher, task_id, client_id=creds.client_id)
        http.close()
        _stop(second)


def test_quota_counters_are_rebuilt_after_redis_loses_them(services: Services) -> None:
    """Tasks active in PostgreSQL go back into their client's counter; ended ones leave it."""
    import redis as redis_sync

    from aia_engine.limits.quota import ActiveTasks
    from aia_engine.redis.counters import quota_key as key

    client = redis_sync.Redis.from_url(services.redis_url)
    quota = ActiveTasks(client, services.sessions)
    who = f"resync-{secrets.token_hex(3)}"
    with services.sessions.begin() as session:
        for i, status in enumerate(["accepted", "in_progress", "completed"]):
            session.execute(
                text(
                    "INSERT INTO tasks (id, client_id, task_type, description, priority, requirements,"
                    " context, workflow, assigned_agents, status, progress, partial_results,"
                    " event_seq, dispatch_count, created_at, updated_at)"
                    " VALUES (:id, :c, 'custom', '', 'medium', '{}', '{}', '{}', '[]', :s, 0, '{}',"
                    " 0, 0, now(), now())"
                ),
                {"id": f"task_{who}_{i}", "c": who, "s": status},
            )
    client.delete(key(who))
    assert quota.resync() >= 2
    assert sorted(m.decode() for m in client.zrange(key(who), 0, -1)) == [
        f"task_{who}_0",
        f"task_{who}_1",
    ]
    assert quota.usage(who) == 2


def test_the_redis_script_and_the_reference_agree(services: Services) -> None:
    """Random request times through the Lua script and through `decide`: same answers."""
    import random

    from aia_engine.limits.bucket import decide
    from aia_engine.tiers import TierLimits

    tiers = {"tiny": TierLimits(per_hour=40, per_minute=12, burst=5)}
    rng = random.Random(11)
    clock = Clock()
    times = sorted(clock.now + rng.uniform(0, 3000) for _ in range(300))

    async def scenario() -> None:
        limiter = RateLimiter(multiplexed(services.redis_url), tiers, clock=clock)
        bucket, used = None, 0
        who = f"mirror-{secrets.token_hex(3)}"
        for at in times:
            clock.now = at
            got = await limiter.hit(who, "tiny")
            want, bucket, used = decide(bucket, used, tiers["tiny"], at)
            assert (got.allowed, got.used) == (want.allowed, want.used), at
            assert abs(got.tokens - want.tokens) < 1e-6
        await limiter.close()

    asyncio.run(scenario())
