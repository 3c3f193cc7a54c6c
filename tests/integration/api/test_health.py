"""`/health` against a live server: answers from state kept by background checks, never
waiting on a worker ping, and reports a failure only once it has lasted the grace period."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from aia_engine.embedded import start_redis
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import serve
from tests.integration.conftest import Services

pytestmark = [pytest.mark.usefixtures("worker"), pytest.mark.timeout(120)]


def test_health_never_waits_on_a_worker_ping(services: Services) -> None:
    # A worker ping waits its whole timeout for replies (however many workers answer): a
    # request that pings, even one in a few, takes at least that long.
    settings = services.settings.model_copy(update={"health_interval_s": 0.5})
    server, thread, url = serve(create_app(settings))
    took: list[float] = []
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            started = time.monotonic()
            while time.monotonic() - started < 4.0:  # two rounds of the old 2 s cache, or more
                sent = time.monotonic()
                r = http.get("/health")
                took.append(time.monotonic() - sent)
                assert r.status_code in (200, 503), r.text
                assert set(r.json()["services"]) >= {"database", "redis", "multi_agent_system"}
    finally:
        server.should_exit = True
        thread.join(10)
    took.sort()
    assert len(took) > 20 and took[-1] < 0.3, (len(took), took[-5:])


def test_a_failure_shows_only_after_the_grace_period(services: Services, tmp_path: Path) -> None:
    # A private Redis this test starts and stops (never the shared one).
    redis_url, proc = start_redis(tmp_path / "redis")
    grace = 3.0
    settings = services.settings.model_copy(
        update={"health_interval_s": 0.2, "health_grace_s": grace}
    )
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
    server, thread, url = serve(create_app(settings, redis_client=client))
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            r = wait_until(  # the worker seen by a ping
                lambda: (r := http.get("/health")).status_code == 200 and r, "/health 200"
            )
            assert r.json()["services"]["redis"] == "healthy"
            proc.terminate()
            proc.wait(10)
            stopped = time.monotonic()
            # Within the grace period: still healthy, as last seen.
            while (elapsed := time.monotonic() - stopped) < grace * 0.75:
                r = http.get("/health")
                assert r.json()["services"]["redis"] == "healthy", (elapsed, r.text)
            # After it: 503 naming Redis (and it took at least the grace period).
            r = wait_until(
                lambda: (r := http.get("/health")).status_code == 503 and r,
                "/health 503 once Redis is gone",
                timeout=grace + 10,
            )
            flipped = time.monotonic() - stopped
            body = r.json()
            assert body["status"] == "degraded" and "redis" in body["failing_services"]
            assert body["services"]["redis"].startswith("unhealthy")
            assert body["services"]["database"] == "healthy"
            assert flipped >= grace, flipped
    finally:
        server.should_exit = True
        thread.join(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_knowledge_graph_is_healthy_when_its_tables_answer_and_unhealthy_when_not(
    services: Services,
) -> None:
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.graph.model import NodeIn
    from aia_engine.graph.writing import write_items

    write_items(services.sessions, "health-kg", [(NodeIn("n", "t"), False)], [], source="api")
    settings = services.settings.model_copy(update={"health_interval_s": 0.2})
    server, thread, url = serve(create_app(settings))
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            r = wait_until(lambda: (r := http.get("/health")).status_code == 200 and r, "/health")
            assert r.json()["services"]["knowledge_graph"] == "healthy"
    finally:
        server.should_exit = True
        thread.join(10)
    # A database without the graph's tables (PostgreSQL itself answers): the graph is named.
    name = f"aia_nokg_{secrets.token_hex(4)}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    bare = services.settings.model_copy(
        update={"database_url": services.database_url.rsplit("/", 1)[0] + f"/{name}"}
    )
    engine = make_engine(bare)
    server, thread, url = serve(create_app(settings, sessions=make_sessions(engine)))
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            body = http.get("/health").json()
            assert body["services"]["database"] == "healthy"
            assert body["services"]["knowledge_graph"].startswith("unhealthy"), body
            assert body["status"] == "degraded" and "knowledge_graph" in body["failing_services"]
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()
        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
