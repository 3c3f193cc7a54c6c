"""Graceful shutdown (worker and API on SIGTERM) and several workers sharing one load."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from aia_engine.db.models import StageRun, Task
from tests.conftest import flush_redis, wait_until
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import (
    Engine,
    Services,
    WorkerFactory,
    _empty_redis_db,
    _stop,
    assert_each_output_written_once,
    noop,
    private_engine,
    start_beat,
    wait_all,
    workflow,
)
from tests.integration.ops.conftest import (
    ApiServer,
    log_of,
    ops_env,
    start,
    terminate,
    tiers,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)  # 21-24 s each on an idle machine


def stages_in(engine: Engine, ids: list[str], status: str) -> set[tuple[str, str]]:
    with engine.sessions.begin() as session:
        rows = session.execute(
            select(StageRun.task_id, StageRun.name).where(
                StageRun.task_id.in_(ids), StageRun.status == status
            )
        ).all()
    return {(t, n) for t, n in rows}


def test_sigterm_to_a_worker_finishes_what_it_runs_and_another_worker_runs_the_rest(
    services: Services, engine: Engine, start_worker: WorkerFactory
) -> None:
    url = _empty_redis_db(services.redis_url)
    mine = private_engine(engine, url)
    try:
        # Given 50 one-second stages and a worker (4 processes) running the first of them
        ids = [mine.submit(workflow({"s": noop(sleep_s=1.0)})) for _ in range(50)]
        env = ops_env(services, services.tmp / "term-worker", REDIS_URL=url)
        first = start(services, "aia-engine worker --concurrency 4", env,
                      services.tmp / "term-worker.log")  # fmt: skip
        running = wait_for(lambda: len(s := stages_in(mine, ids, "running")) >= 3 and s,
                           None, "stages running", interval=0.05)  # fmt: skip

        # When it gets SIGTERM (as a process manager stops it)
        terminated_at = time.monotonic()
        assert terminate(first) == 0, log_of(first)
        assert "Warm shutdown" in log_of(first)

        # Then what it was running finished, nothing is left "running", and the rest waits
        completed = stages_in(mine, ids, "completed")
        assert running <= completed
        assert not stages_in(mine, ids, "running")
        assert len(completed) < 50

        # And a new worker runs the rest before any message could have been redelivered by the
        # broker's visibility timeout: the stopped worker held nothing back
        second = start_worker("after-term", concurrency=4, env={"REDIS_URL": url})
        try:
            counts = wait_all(mine, ids, timeout=35)
        finally:
            _stop(second)
        assert counts == {"completed": 50}, counts
        assert time.monotonic() - terminated_at < float(services.env["AIA_VISIBILITY_TIMEOUT_S"])
        assert_each_output_written_once(mine, ids, 1)
    finally:
        flush_redis(url)


SUBMIT = {"task_type": "drain", "workflow": {"only": {"agent": "noop"}}}


def test_sigterm_to_the_api_under_load_loses_no_accepted_request(
    services: Services,
    engine: Engine,
    start_worker: WorkerFactory,
    make_client: Callable[..., Credentials],
) -> None:
    api = ApiServer(services, "drain-api", AIA_API_WORKERS="2", AIA_RATE_LIMIT_TIERS=tiers(10**6))
    creds = make_client(name="under load", tier="enterprise")
    token = httpx.post(
        f"{api.url}/auth/token", data=creds.form(grant_type="client_credentials")
    ).json()["access_token"]
    stop = threading.Event()
    outcomes: list[tuple[str, int | None, str | None, float, str | None]] = []

    def load(n: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                key = f"drain-{n}-{i}"
                try:
                    r = http.post("/tasks/submit", json=SUBMIT, headers={"Idempotency-Key": key})
                    body = r.json()
                    outcomes.append(
                        (key, r.status_code, body.get("task_id"), time.monotonic(), None)
                    )
                except httpx.HTTPError as exc:
                    outcomes.append((key, None, None, time.monotonic(), type(exc).__name__))
                    if isinstance(exc, httpx.ConnectError):  # no longer listening
                        return

    # Given 8 clients submitting as fast as they can
    threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    # ... and well under way: a hundred submissions accepted (the test needs more than 50)
    wait_until(lambda: sum(1 for o in outcomes if o[1] == 200) >= 100, "100 accepted submissions")
    # When the API gets SIGTERM
    terminated_at = time.monotonic()
    code = terminate(api.proc)
    stop.set()
    for t in threads:
        t.join(30)
    # (a single uvicorn process re-raises the SIGTERM it handled; a supervisor exits 0)
    assert code in (0, -signal.SIGTERM), (code, log_of(api.proc)[-3000:])
    assert log_of(api.proc).count("Application shutdown complete.") == 2  # both processes

    # Then every request it accepted (200) is a task in PostgreSQL...
    accepted = {key: task_id for key, status, task_id, _, _ in outcomes if status == 200}
    assert len(accepted) > 50, outcomes[-10:]
    with engine.sessions.begin() as session:
        stored = dict(
            session.execute(
                select(Task.idempotency_key, Task.id).where(Task.client_id == creds.client_id)
            ).all()
        )
    assert {k: stored.get(k) for k in accepted} == accepted
    # ...requests in flight when it was told to stop were answered, nothing answered 5xx...
    assert any(at > terminated_at for _, status, _, at, _ in outcomes if status == 200)
    assert {status for _, status, _, _, _ in outcomes} <= {200, None}
    # ...and every accepted task runs to completion
    worker = start_worker("after-drain", concurrency=2)
    beat = start_beat(services)
    try:
        counts = wait_all(engine, list(stored.values()), timeout=120)
    finally:
        _stop(beat)
        _stop(worker)
    assert counts == {"completed": len(stored)}, counts


def completed_by(log: str) -> int:
    return len(re.findall(r"stage \S+ of task \S+: completed", log))


def test_three_workers_share_300_two_stage_workflows_and_a_kill_9_loses_nothing(
    services: Services, engine: Engine, start_worker: WorkerFactory
) -> None:
    url = _empty_redis_db(services.redis_url)
    mine = private_engine(engine, url)
    env = {"REDIS_URL": url}
    try:
        # Given 300 two-stage workflows and three worker processes, each its own node
        ids = [
            mine.submit(workflow({"a": noop(sleep_s=0.05, timeout_s=3),
                                  "b": noop("a", sleep_s=0.05, timeout_s=3)}))
            for _ in range(300)
        ]  # fmt: skip
        workers = [start_worker(f"scale{i}", concurrency=2, env=env) for i in range(3)]
        beat = start_beat(services, env)
        # When one of them is killed with SIGKILL mid-run
        wait_for(lambda: len(stages_in(mine, ids, "completed")) >= 150, None, "a quarter done",
                 interval=0.05)  # fmt: skip
        victim = workers[1]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        assert len(stages_in(mine, ids, "completed")) < 600, "the kill came too late"
        try:
            counts = wait_all(mine, ids, timeout=150)
        finally:
            _stop(beat)
            for w in workers:
                _stop(w)
        # Then every task completed, each stage output written exactly once
        assert counts == {"completed": 300}, counts
        assert_each_output_written_once(mine, ids, 2)
        # And every worker ran a share of the stages
        shares = [completed_by(log_of(w)) for w in workers]
        assert all(share >= 30 for share in shares), shares
        assert sum(shares) <= 600
        with mine.sessions.begin() as session:
            done = session.scalar(
                select(func.count()).where(
                    StageRun.task_id.in_(ids), StageRun.status == "completed"
                )
            )
        assert done == 600
    finally:
        flush_redis(url)
