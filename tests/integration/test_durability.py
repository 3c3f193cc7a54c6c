"""Nothing accepted is lost: a worker killed mid-stage, Redis flushed, Redis down at submission.

These tests run their own workers, beat and (where Redis is stopped) their own Redis server on a
free loopback port, so nothing else on the machine is disturbed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from aia_engine.db.models import StageRun, Task
from aia_engine.embedded import free_port, start_redis
from tests.conftest import wait_until
from tests.integration.conftest import (
    ROOT,
    Engine,
    Services,
    WorkerFactory,
    _stop,
    assert_each_output_written_once,
    noop,
    private_engine,
    start_beat,
    wait_all,
    workflow,
)

# Workers, beat and Redis restarts: up to 15 s each on an idle machine.
pytestmark = pytest.mark.timeout(120)


def count_status(engine: Engine, ids: list[str], status: str) -> int:
    with engine.sessions.begin() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Task)
                .where(Task.id.in_(ids), Task.status == status)
            )
            or 0
        )


def finish_with_fresh_processes(
    engine: Engine,
    start_worker: WorkerFactory,
    services: Services,
    ids: list[str],
    *,
    name: str,
    env: dict[str, str] | None = None,
    timeout: float,
) -> dict[str, int]:
    """Start a worker and beat (relay + reconciler), wait for `ids`, stop both."""
    w = start_worker(name, concurrency=2, env=env)
    beat = start_beat(services, env)
    try:
        return wait_all(engine, ids, timeout=timeout)
    finally:
        _stop(beat)
        _stop(w)


def test_worker_killed_with_200_stages_in_flight_loses_nothing(
    engine: Engine, start_worker: WorkerFactory, services: Services
) -> None:
    # Given a worker busy with 100 two-stage workflows (stage time limit 3 s, so leases run out fast)
    victim = start_worker("victim", concurrency=2)
    ids = [
        engine.submit(
            workflow(
                {"a": noop(sleep_s=0.05, timeout_s=3), "b": noop("a", sleep_s=0.05, timeout_s=3)}
            )
        )
        for _ in range(100)
    ]

    def completed_stages() -> int:
        with engine.sessions.begin() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(StageRun)
                    .where(StageRun.task_id.in_(ids), StageRun.status == "completed")
                )
                or 0
            )

    wait_until(lambda: completed_stages() >= 10, "ten stages completed", timeout=30)
    # When it is killed with SIGKILL mid-run (main process and its pool children)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    with engine.sessions.begin() as session:
        unfinished = session.scalar(
            select(func.count())
            .select_from(StageRun)
            .where(StageRun.task_id.in_(ids), StageRun.status != "completed")
        )
    assert unfinished and unfinished > 0, "the kill came too late to test anything"
    # And a new worker and beat take over
    counts = finish_with_fresh_processes(
        engine, start_worker, services, ids, name="rescuer", timeout=150
    )
    # Then every task completed and every stage output was written exactly once
    assert counts == {"completed": 100}, counts
    assert_each_output_written_once(engine, ids, 2)


@pytest.fixture
def private_redis(services: Services) -> Iterator[dict[str, object]]:
    """A Redis server of this test's own, so it can be stopped and flushed."""
    port = free_port()
    url, proc = start_redis(services.tmp / f"redis-{port}", port=port)
    state: dict[str, object] = {"url": url, "proc": proc, "port": port}
    yield state
    current = state["proc"]
    assert isinstance(current, subprocess.Popen)
    _stop(current)


def restart_redis_empty(services: Services, state: dict[str, object]) -> None:
    proc = state["proc"]
    assert isinstance(proc, subprocess.Popen)
    _stop(proc)
    port = int(str(state["port"]))
    _, state["proc"] = start_redis(
        services.tmp / f"redis-{port}-fresh-{time.monotonic_ns()}", port=port
    )


def test_redis_flushed_after_500_accepted_submissions_loses_nothing(
    engine: Engine,
    start_worker: WorkerFactory,
    services: Services,
    private_redis: dict[str, object],
) -> None:
    url = str(private_redis["url"])
    mine = private_engine(engine, url)
    # Given 500 accepted tasks whose messages sit in Redis (no worker is consuming yet)
    ids = [mine.submit(workflow({"a": noop(), "b": noop("a")})) for _ in range(500)]
    assert count_status(engine, ids, "queued") == 500
    # When Redis stops and comes back empty
    restart_redis_empty(services, private_redis)
    # Then a worker and beat (relay + reconciler) finish every task
    counts = finish_with_fresh_processes(
        engine, start_worker, services, ids, name="after-flush", env={"REDIS_URL": url}, timeout=180
    )
    assert counts == {"completed": 500}, counts
    assert_each_output_written_once(engine, ids, 2)


def test_submission_while_redis_is_down_is_accepted_promptly_and_runs_later(
    engine: Engine,
    start_worker: WorkerFactory,
    services: Services,
    private_redis: dict[str, object],
) -> None:
    url = str(private_redis["url"])
    mine = private_engine(engine, url)
    proc = private_redis["proc"]
    assert isinstance(proc, subprocess.Popen)
    _stop(proc)
    # Given Redis is down, when 20 tasks are submitted
    latencies = []
    ids = []
    for _ in range(20):
        started = time.monotonic()
        ids.append(mine.submit(workflow({"a": noop()})))
        latencies.append(time.monotonic() - started)
    # Then each is accepted at once (the first pays the 1 s connect timeout at most)
    assert max(latencies) < 2.5, latencies
    assert sorted(latencies)[len(latencies) // 2] < 0.2, latencies
    assert count_status(engine, ids, "accepted") == 20
    # And once Redis is back, the outbox relay publishes them and they complete
    restart_redis_empty(services, private_redis)
    counts = finish_with_fresh_processes(
        engine, start_worker, services, ids, name="after-outage", env={"REDIS_URL": url}, timeout=90
    )
    assert counts == {"completed": 20}, counts


def test_worker_refuses_to_start_with_an_unsafe_configuration(services: Services) -> None:
    env = {**services.env, "AIA_RESULT_EXPIRES_S": "100", "AIA_MAX_WORKFLOW_DURATION_S": "50"}
    # Settings themselves allow this pair; the worker's own check compares Celery's conf.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import celeryconfig; celeryconfig.task_acks_late = False; "
            "from workers.app import app; app.worker_main(['worker', '--pool', 'solo', '-Q', 'none'])",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing to start the worker" in result.stderr and "task_acks_late" in result.stderr
