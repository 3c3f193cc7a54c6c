"""`aia-engine status` and `aia-engine reconcile`, run as an operator runs them."""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest
import redis
from sqlalchemy import func, select

from aia_engine.db.models import Task
from aia_engine.tasks.control import cancel_task
from tests.conftest import flush_redis
from tests.integration.conftest import (
    ROOT,
    Engine,
    Services,
    WorkerFactory,
    _empty_redis_db,
    _stop,
    noop,
    private_engine,
    workflow,
)
from tests.integration.ops.conftest import ops_env

pytestmark = pytest.mark.timeout(90)  # up to 20 s on an idle machine


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["aia-engine", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_status_shows_workers_queue_depths_by_priority_tasks_and_the_oldest_waiting(
    services: Services, engine: Engine, start_worker: WorkerFactory
) -> None:
    # Given a broker of its own, a worker taking only high-priority work, and waiting work
    url = _empty_redis_db(services.redis_url)
    env = ops_env(services, services.tmp / "status", REDIS_URL=url)
    mine = private_engine(engine, url)
    worker = start_worker("highonly", queues="aia.high", env={"REDIS_URL": url})
    try:
        low = [mine.submit(workflow({"s": noop()}, priority="low")) for _ in range(3)]
        medium = [mine.submit(workflow({"s": noop()}, priority="medium")) for _ in range(2)]
        high = mine.submit(workflow({"s": noop()}, priority="high"))
        assert mine.wait(high)["status"] == "completed"

        # When the operator asks for the status
        shown = run(env, "status", "--json")
        text = run(env, "status")
        with services.sessions.begin() as session:
            counts = dict(
                session.execute(select(Task.status, func.count()).group_by(Task.status)).all()
            )
            first_waiting = session.scalar(
                select(Task.id).where(Task.status.in_(["accepted", "queued"]))
                .order_by(Task.created_at, Task.id).limit(1)
            )  # fmt: skip
    finally:
        _stop(worker)
        for task_id in low + medium:  # no worker will take them: leave nothing waiting
            cancel_task(mine.sessions, mine.publisher, task_id)
        flush_redis(url)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    # Then the worker, with its queue
    names = {w["name"]: w for w in status["workers"]}
    me = names[f"highonly@{socket.gethostname()}"]
    assert me["queues"] == ["aia.high"] and me["concurrency"] == 2 and me["processed"] >= 1
    # And the messages waiting per priority
    assert status["queues"] == {"high": 0, "medium": 2, "low": 3, "webhooks": 0}
    # And tasks by status, as PostgreSQL has them
    assert {k: v for k, v in status["tasks"].items() if v} == counts
    assert first_waiting is not None  # ours at least are waiting (other tests' may be older)
    assert status["oldest_waiting"]["task_id"] == first_waiting
    # And the same, readable
    assert text.returncode == 0
    assert "queued messages: high 0  medium 2  low 3  webhooks 0" in text.stdout
    assert f"oldest waiting: {first_waiting}" in text.stdout
    assert "highonly@" in text.stdout


def test_status_exits_1_when_no_worker_takes_stages(services: Services) -> None:
    url = _empty_redis_db(services.redis_url)
    shown = run(ops_env(services, services.tmp / "status-none", REDIS_URL=url), "status",
                "--timeout", "0.5")  # fmt: skip
    assert shown.returncode == 1
    assert "no worker takes workflow stages" in shown.stdout


def test_reconcile_redispatches_a_workflow_whose_message_was_lost_and_says_so(
    services: Services, engine: Engine, start_worker: WorkerFactory
) -> None:
    # Given a task whose queued message was lost (its broker list deleted)
    url = _empty_redis_db(services.redis_url)
    env = ops_env(services, services.tmp / "reconcile", REDIS_URL=url)
    mine = private_engine(engine, url)
    broker = redis.Redis.from_url(url)
    try:
        lost = mine.submit(workflow({"first": noop(), "second": noop("first")}, priority="low"))
        assert broker.delete("aia.low") == 1
        time.sleep(float(services.env["AIA_STUCK_AFTER_S"]) + 0.5)

        # When the operator runs the reconciler once
        done = run(env, "reconcile")

        # Then it says what it did, and the workflow is queued again and runs
        assert done.returncode == 0, done.stderr
        assert f"re-dispatched {lost}: first, second" in done.stdout
        assert broker.llen("aia.low") >= 1
        worker = start_worker("rescuer-cli", env={"REDIS_URL": url})
        try:
            assert mine.wait(lost)["status"] == "completed"
        finally:
            _stop(worker)
        assert lost not in run(env, "reconcile").stdout
    finally:
        broker.flushdb()
