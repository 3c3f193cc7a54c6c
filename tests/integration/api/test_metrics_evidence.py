"""`/metrics` and analytics report no figure without evidence: on a fresh stack (its own empty
database and Redis database, a new API process) rates and scores over nothing are null, the
process's first CPU reading measures an interval, and once there is data the figures are the
ones this test computes itself."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aia_engine.auth.clients import create_client
from aia_engine.auth.tokens import issue_access_token
from aia_engine.db.migrate import upgrade
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.embedded import free_port
from aia_engine.metrics.requests import window
from tests.conftest import popen_to_log, wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for, wait_task
from tests.integration.conftest import ROOT, Services, WorkerFactory, _stop


@dataclass
class FreshStack:
    url: str
    token: str
    redis: redis.Redis
    started_at: float  # monotonic, just before the API process was started


def _other_empty_redis_db(services: Services) -> str:
    kwargs = redis.Redis.from_url(services.redis_url).connection_pool.connection_kwargs
    server = f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"
    for db in range(2, 16):
        if db == kwargs.get("db"):
            continue
        probe = redis.Redis.from_url(f"{server}/{db}")
        try:
            if probe.dbsize() == 0:
                return f"{server}/{db}"
        finally:
            probe.close()
    pytest.fail("no second empty Redis database (2-15) for a fresh stack", pytrace=False)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Any) -> None:
    """Ready when the port accepts: no HTTP request, so the request window stays empty."""

    def listening() -> bool:
        assert proc.poll() is None, log.read_text()
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    wait_until(listening, "the API to listen", timeout=60, ignore=(OSError,))


@pytest.fixture(scope="module")
def fresh(services: Services) -> Iterator[FreshStack]:
    name = f"aia_fresh_{secrets.token_hex(4)}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    redis_url = _other_empty_redis_db(services)
    settings = services.settings.model_copy(update={"database_url": url, "redis_url": redis_url})
    upgrade(settings)
    sessions = make_sessions(make_engine(settings))
    made = create_client(sessions, name="fresh", tier="enterprise", scopes="read write admin")
    # A token made here, not asked of the API: an /auth/token request would enter the window.
    token, _ = issue_access_token(
        made.client_id, ["read", "write", "admin"], settings=settings, now=datetime.now(UTC)
    )
    port = free_port()
    log = services.tmp / f"fresh-api-{port}.log"
    started_at = time.monotonic()
    proc = popen_to_log(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**services.env, "DATABASE_URL": url, "REDIS_URL": redis_url},
        cwd=ROOT, log=log,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    try:
        _wait_listening(proc, port, log)
        yield FreshStack(f"http://127.0.0.1:{port}", token, client, started_at)
    finally:
        _stop(proc)
        client.flushdb()
        sessions.kw["bind"].dispose()
        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _burn_cpu(seconds: float) -> float:
    """Keeps one core busy; returns the CPU seconds this process used."""
    began = time.process_time()
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return time.process_time() - began


def test_fresh_stack_reports_null_then_measured_figures(fresh: FreshStack) -> None:
    used = _burn_cpu(1.0)
    with httpx.Client(
        base_url=fresh.url, headers={"Authorization": f"Bearer {fresh.token}"}, timeout=30
    ) as http:
        first = http.get("/metrics")
        elapsed = time.monotonic() - fresh.started_at
        assert first.status_code == 200, first.text
        body = first.json()
        api, business = body["api_metrics"], body["business_metrics"]
        # No request in the window and no stage that ended: nothing to rate.
        assert api["success_rate"] is None
        assert api["error_rate"] is None
        assert api["average_response_time"] is None
        assert api["requests_per_second"] == 0.0  # zero requests counted is a measurement
        assert business["agent_performance_score"] is None
        assert business["active_tasks"] == 0 and business["completed_tasks"] == 0
        # The process's first CPU reading covers an interval holding this test's busy second,
        # so it is at least that second's share of every core over the whole interval.
        cpu = body["system_metrics"]["cpu_usage"]
        floor = 100.0 * used / (psutil.cpu_count() * elapsed)
        assert cpu is not None and cpu >= 0.9 * floor, (cpu, floor)

        prom = http.get("/metrics/prometheus").text  # every client's figures: admin scope
        assert 'aia_host_usage_percent{resource="cpu"}' in prom  # measured, so exported

        # Now requests with known answers: 6 found, 4 not found.
        codes = [http.get(f"/tasks/task_{'0' * 32}").status_code for _ in range(4)]
        codes += [http.get("/tasks", params={"limit": 1}).status_code for _ in range(6)]
        assert codes == [404] * 4 + [200] * 6
        # Twelve requests so far (the two scrapes and these ten): wait until the window, read
        # from Redis directly (which is no request), holds them all in complete seconds.
        wait_until(
            lambda: window(fresh.redis).get("requests", 0.0) >= 12,
            lambda: f"12 requests in the window: {window(fresh.redis)}",
            timeout=10,
            interval=0.1,
        )
        counted = window(fresh.redis)
        after = http.get("/metrics").json()["api_metrics"]
    assert counted["requests"] == 12 and counted["status_4xx"] == 4
    assert after["success_rate"] == round(100.0 * 8 / 12, 2)
    assert after["error_rate"] == round(4 / 12, 4)
    assert after["average_response_time"] == round(counted["duration_ms"] / 12, 1)


def test_user_analytics_without_evidence_is_null(fresh: FreshStack) -> None:
    with httpx.Client(
        base_url=fresh.url, headers={"Authorization": f"Bearer {fresh.token}"}, timeout=30
    ) as http:
        nobody = http.get("/monitoring/user-analytics/nobody").json()
        assert nobody["summary"]["total_requests"] == 0
        assert nobody["summary"]["average_response_time"] is None
        assert nobody["performance_metrics"]["error_rate"] is None
        assert nobody["performance_metrics"]["p50_response_time"] is None
        # An activity that reports no status code is neither a success nor a failure.
        r = http.post(
            "/monitoring/track-user-activity",
            json={"user_id": "viewer", "activity_type": "page_view", "details": {}},
        )
        assert r.status_code == 201, r.text
        viewer = http.get("/monitoring/user-analytics/viewer").json()
        assert viewer["summary"]["total_requests"] == 1
        assert viewer["summary"]["successful_requests"] == 0
        assert viewer["summary"]["failed_requests"] == 0
        assert viewer["performance_metrics"]["error_rate"] is None
        for status in (200, 500, 201):
            http.post(
                "/monitoring/track-user-activity",
                json={"user_id": "viewer", "activity_type": "api_request",
                      "details": {"status_code": status}},
            )  # fmt: skip
        viewer = http.get("/monitoring/user-analytics/viewer").json()
        assert viewer["summary"]["total_requests"] == 4
        assert viewer["summary"]["successful_requests"] == 2
        assert viewer["summary"]["failed_requests"] == 1
        assert viewer["performance_metrics"]["error_rate"] == round(1 / 3, 3)


def test_agent_performance_score_is_the_share_of_ended_stages_that_completed(
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    start_worker: WorkerFactory,
    services: Services,
) -> None:
    worker = start_worker("evidence")
    task = {"task_type": "custom", "description": "score",
            "workflow": {"a": {"agent": "noop", "dependencies": []},
                         "b": {"agent": "noop", "dependencies": ["a"]}}}  # fmt: skip
    creds = make_client()
    token = token_for(live_api, creds)
    try:
        with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
            ids = [http.post("/tasks/orchestrate", json=task).json()["task_id"] for _ in range(3)]
            failing = {**task, "workflow": {"a": {"agent": "test_noop", "params": {"fail": True}}}}
            ids.append(http.post("/tasks/orchestrate", json=failing).json()["task_id"])
            for task_id in ids:
                assert wait_task(http, task_id)["status"] in ("completed", "failed")

            def score() -> float:
                with services.sessions.begin() as session:
                    rows = session.execute(
                        text(
                            "SELECT s.status FROM stage_runs s JOIN tasks t ON t.id = s.task_id "
                            "WHERE t.client_id = :c AND s.finished_at > now() - "
                            "interval '24 hours' AND s.status IN ('completed', 'failed')"
                        ),
                        {"c": creds.client_id},
                    ).scalars()
                    ended = list(rows)
                return round(100.0 * ended.count("completed") / len(ended), 1)

            before = score()
            assert before == round(100.0 * 6 / 7, 1)  # this client's six completed, one failed
            got = http.get("/metrics").json()["business_metrics"]["agent_performance_score"]
            assert got in (before, score())
    finally:
        _stop(worker)


def test_the_openapi_document_says_which_figures_may_be_null(live_api: LiveApi) -> None:
    with live_api.client() as http:
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
    for model, field in [
        ("SystemMetrics", "cpu_usage"),
        ("ApiMetrics", "average_response_time"),
        ("ApiMetrics", "error_rate"),
        ("ApiMetrics", "success_rate"),
        ("BusinessMetrics", "agent_performance_score"),
        ("AnalyticsPerformance", "error_rate"),
    ]:
        prop = schemas[model]["properties"][field]
        assert {"type": "null"} in prop["anyOf"], (model, field, prop)
        assert field in schemas[model]["required"]  # always present, null when unmeasured
