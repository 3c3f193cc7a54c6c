"""Integration fixtures: a real PostgreSQL, a real Redis and real `celery worker` processes.

Services come from DATABASE_URL / REDIS_URL when set; otherwise embedded ones are started from
pip packages. Under CI (CI set) a service that cannot be reached is an error, never a skip.
Each test session gets a fresh database (refusing to reuse one) and an empty Redis database.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

import tests.agents  # noqa: F401  (registers `test_noop` here too, whatever imported first)
from aia_engine.db.migrate import upgrade
from aia_engine.db.models import StageRun, Task, TaskEvent
from aia_engine.db.session import Sessions, make_engine, make_sessions
from aia_engine.publishing import PublishGate
from aia_engine.settings import Settings, get_settings
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasks.queries import get_task
from aia_engine.tasks.submit import submit_task
from tests.conftest import SERVICE_ENV, wait_until

ROOT = Path(__file__).resolve().parents[2]

# Fast timings so stuck work is found in seconds, not minutes.
TEST_TIMINGS = {
    "AIA_DEFAULT_STAGE_TIMEOUT_S": "20",
    "AIA_MAX_STAGE_TIMEOUT_S": "30",
    "AIA_STAGE_HARD_LIMIT_GRACE_S": "2",
    "AIA_VISIBILITY_TIMEOUT_S": "40",
    "AIA_STUCK_AFTER_S": "4",
    "AIA_RECONCILE_INTERVAL_S": "1",
    "AIA_RELAY_INTERVAL_S": "0.5",
    "AIA_OUTBOX_STALE_S": "1",
    "AIA_DEPENDENCY_WAIT_S": "0.2",
    "AIA_PROGRESS_THROTTLE_S": "0.1",
    # /health's background checks: a worker started by a test is seen within a second.
    "AIA_HEALTH_INTERVAL_S": "0.5",
    "AIA_PUBLISH_BACKOFF_S": "0.5",
    # Tests ask for many tokens from one address; the limiter has its own test.
    "AIA_TOKEN_RATE_PER_IP": "100000",
    "JWT_SECRET_KEY": "test-signing-key-" + "0123456789abcdef" * 4,
    "AIA_TOKEN_RATE_PER_CLIENT": "100000",
    # An answer that is not exactly its declared model fails the test (a 500), not a log line.
    "AIA_CONTRACT_CHECK": "raise",
    # Tests make many requests per client; the rate-limit tests use the guide's tiers.
    "AIA_RATE_LIMIT_TIERS": json.dumps(
        {
            t: {"per_hour": 10**7, "per_minute": 10**7, "burst": 10**6}
            for t in ("free", "developer", "business", "enterprise")
        }
    ),
    # The test-only agent (`test_noop`: waits, fails, ...) that no shipped agent may offer.
    "AIA_AGENT_MODULES": '["tests.agents"]',
    # API and worker processes must share the key that encrypts webhook secrets.
    "AIA_WEBHOOK_ENCRYPTION_KEY": "G5yf0nLmAyhuJsN5wP2cJkE1oQ0qx2iYt3K9hQvOa8Y=",
}


@dataclass
class Services:
    database_url: str
    redis_url: str
    settings: Settings
    sessions: Sessions
    env: dict[str, str]
    tmp: Path
    embedded: Any = None
    admin_url: str = ""
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _require(what: str, exc: Exception) -> None:
    pytest.fail(f"{what} is not reachable ({exc}); integration tests need it", pytrace=False)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    tmp = tmp_path_factory.mktemp("aia")
    embedded = None
    db_url, redis_url = SERVICE_ENV["DATABASE_URL"], SERVICE_ENV["REDIS_URL"]
    if not (db_url and redis_url):
        if SERVICE_ENV["CI"]:
            pytest.fail(
                "CI is set but DATABASE_URL / REDIS_URL are not: .ci/run must export them",
                pytrace=False,
            )
        from aia_engine.embedded import start_embedded

        embedded = start_embedded(tmp / "embedded")
        db_url, redis_url = db_url or embedded.database_url, redis_url or embedded.redis_url
    admin = make_url(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"aia_test_{secrets.token_hex(4)}"
    plain_admin = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(plain_admin, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            assert not exists, "test database already exists; aborting"
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _require("PostgreSQL", exc)
    test_db = admin.set(database=name).render_as_string(hide_password=False)
    test_redis = _empty_redis_db(redis_url)
    env = {
        **os.environ,
        "DATABASE_URL": test_db,
        "REDIS_URL": test_redis,
        **TEST_TIMINGS,
        # The tree under test, and its SDK (clients/python): the CLI's batch and upload
        # commands talk to the API through it, and a worktree's SDK must win over another.
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python")]),
    }
    env.pop("CI", None)
    os.environ.update({"DATABASE_URL": test_db, "REDIS_URL": test_redis, **TEST_TIMINGS})
    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings)
    from workers.app import use_redis

    use_redis(test_redis)
    svc = Services(
        test_db,
        test_redis,
        settings,
        make_sessions(make_engine(settings)),
        env,
        tmp,
        embedded,
        plain_admin,
    )
    yield svc
    for proc in svc.workers:
        _stop(proc)
    svc.sessions.kw["bind"].dispose()
    redis.Redis.from_url(test_redis).flushdb()
    with psycopg.connect(plain_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if embedded is not None:
        embedded.stop()


def _empty_redis_db(url: str) -> str:
    base = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        base.ping()
    except redis.RedisError as exc:
        _require("Redis", exc)
    kwargs = base.connection_pool.connection_kwargs
    server = f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"
    for db in range(2, 16):
        candidate = f"{server}/{db}"
        if redis.Redis.from_url(candidate).dbsize() == 0:
            return candidate
    pytest.fail("no empty Redis database (2-15) to run tests in", pytrace=False)


def stop_process(
    proc: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    timeout: float = 20,
    *,
    must_exit: bool = False,
) -> int | None:
    """Send `sig` and wait; past `timeout`, kill the process group (a prefork worker's children
    too). The exit code; with `must_exit`, having to kill it fails the test (a graceful stop is
    what is being tested)."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it ended just now
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        if must_exit:
            pytest.fail(f"still running {timeout}s after signal {sig}:\n{log_tail(proc)}")
        return None


# The name the integration modules have always imported.
_stop = stop_process


def log_tail(proc: subprocess.Popen[bytes], size: int = 4000) -> str:
    """The end of a process's log file (`log_path`, set by the helpers that start one)."""
    path: Path | None = getattr(proc, "log_path", None)
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-size:]


def wait_logged(proc: subprocess.Popen[bytes], text: str, what: str, timeout: float = 60) -> None:
    """Until `text` is in the process's log; fails at once, with the log, if the process exits."""

    def seen() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}:\n{log_tail(proc)}")
        path: Path = proc.log_path  # type: ignore[attr-defined]
        return path.exists() and text in path.read_text(errors="replace")

    wait_until(seen, lambda: f"{what}:\n{log_tail(proc)}", timeout=timeout, interval=0.1)


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


def spawn_celery(
    services: Services, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `celery -A workers.app ARGS` as its own process group, tracked for clean-up."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", *args],
        env={**services.env, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    services.workers.append(proc)
    return proc


def start_beat(
    services: Services,
    env: dict[str, str] | None = None,
    *,
    name: str = "beat",
    publishing_events: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `celery beat` (relay, reconciler, monitors) with its own schedule file and log.

    With `publishing_events`, wait until its event pump has the lock (webhooks go out)."""
    tag = f"{name}-{secrets.token_hex(3)}"
    log = services.tmp / f"{tag}.log"
    proc = spawn_celery(
        services, "beat", "-l", "INFO", "-s", str(services.tmp / tag), "-f", str(log), env=env
    )
    proc.log_path = log  # type: ignore[attr-defined]
    if publishing_events:
        wait_logged(proc, "event pump: this process publishes events", f"{name} pumping events")
    return proc


@pytest.fixture(scope="session")
def start_worker(services: Services) -> WorkerFactory:
    """Start a real `celery worker` process and wait until it is ready."""
    counter = iter(range(1000))

    def start(
        name: str | None = None,
        *,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        wait: bool = True,
        pool: str = "prefork",
        queues: str = "aia.high,aia.default,aia.low",
    ) -> subprocess.Popen[bytes]:
        name = name or f"w{next(counter)}"
        log = services.tmp / f"{name}-{secrets.token_hex(3)}.log"
        proc = spawn_celery(
            services,
            "worker", "-Q", queues, "-c", str(concurrency),
            "-n", f"{name}@%h", "-P", pool, "--without-mingle", "--without-gossip",
            "-l", "INFO", "-f", str(log),
            env=env,
        )  # fmt: skip
        proc.log_path = log  # type: ignore[attr-defined]
        if wait:
            wait_logged(proc, " ready.", f"worker {name} ready")
        return proc

    return start


@pytest.fixture(scope="module")
def worker(start_worker: WorkerFactory) -> Iterator[subprocess.Popen[bytes]]:
    """A worker for one test module (prefork, 2 processes)."""
    proc = start_worker()
    yield proc
    _stop(proc)


def wait_run_ended(
    worker: subprocess.Popen[bytes], celery_id: str, what: str, timeout: float = 20
) -> None:
    """Until the worker's log says the Celery task `celery_id` ended (succeeded, failed, or
    discarded as revoked) or that it sent the revoke's SIGTERM to the process running it (a
    terminated run logs nothing more)."""
    ends = ("succeeded", "raised", "failed", "Discarding revoked", "Terminating")

    def ended() -> bool:
        if worker.poll() is not None:
            pytest.fail(f"{what}: the worker exited with {worker.returncode}")
        text = worker.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
        return any(celery_id in line and any(e in line for e in ends) for line in text.splitlines())

    wait_until(ended, lambda: f"{what}:\n{log_tail(worker)}", timeout=timeout, interval=0.1)


@dataclass
class Engine:
    services: Services
    publisher: Any
    gate: PublishGate

    @property
    def sessions(self) -> Sessions:
        return self.services.sessions

    def submit(self, body: dict[str, Any], **kwargs: Any) -> str:
        accepted = submit_task(
            self.sessions,
            TaskRequest.model_validate(body),
            settings=self.services.settings,
            publisher=self.publisher,
            gate=self.gate,
            **kwargs,
        )
        return accepted.task_id

    def get(self, task_id: str) -> dict[str, Any]:
        with self.sessions.begin() as session:
            client_id = session.scalar(select(Task.client_id).where(Task.id == task_id))
        return get_task(self.sessions, task_id, client_id=client_id or "local")

    def wait(
        self,
        task_id: str,
        *,
        statuses: tuple[str, ...] = ("completed", "failed", "cancelled"),
        timeout: float = 60,
    ) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def ended() -> dict[str, Any] | None:
            last.update(self.get(task_id))
            return dict(last) if last["status"] in statuses else None

        return wait_until(
            ended,
            lambda: (
                f"task {task_id} to be {'/'.join(statuses)}, still {last['status']}: "
                f"{[(s['name'], s['status']) for s in last['stages']]}"
            ),
            timeout=timeout,
            interval=0.1,
        )

    def celery_id(self, task_id: str, name: str) -> str:
        """The Celery task id of stage `name`'s current run."""
        with self.sessions.begin() as session:
            cid = session.scalar(
                select(StageRun.celery_id).where(StageRun.task_id == task_id, StageRun.name == name)
            )
        assert cid, f"stage {name} of {task_id} has no Celery run"
        return cid

    def stage(self, task_id: str, name: str) -> dict[str, Any]:
        """One stage of the task's view."""
        return next(s for s in self.get(task_id)["stages"] if s["name"] == name)

    def wait_stage(
        self, task_id: str, name: str, status: str = "running", timeout: float = 30
    ) -> dict[str, Any]:
        """Until stage `name` is `status` (a running stage: its agent has started)."""
        return wait_until(
            lambda: (s := self.stage(task_id, name))["status"] == status and s,
            f"stage {name} of {task_id} to be {status}",
            timeout=timeout,
        )


def wait_all(engine: Engine, ids: list[str], timeout: float) -> dict[str, int]:
    """Until every task in `ids` completed, or `timeout` passed: the count of each status (the
    caller asserts on them, so a failure shows how far the work got)."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.sessions.begin() as session:
            counts = dict(
                session.execute(
                    select(Task.status, func.count()).where(Task.id.in_(ids)).group_by(Task.status)
                ).all()
            )
        if counts.get("completed", 0) == len(ids) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


@pytest.fixture(scope="session")
def engine(services: Services) -> Engine:
    from workers.app import app
    from workers.dispatch import CeleryPublisher

    return Engine(services, CeleryPublisher.from_settings(services.settings, app), PublishGate(0.5))


def private_engine(engine: Engine, url: str) -> Engine:
    """An Engine publishing to the broker at `url` (a Redis of the test's own)."""
    from celery import Celery

    from workers.dispatch import CeleryPublisher

    app = Celery("aia_private", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = url
    app.conf.result_backend = f"workers.results:EngineRedisBackend+{url}"
    return Engine(
        engine.services,
        CeleryPublisher.from_settings(engine.services.settings, app),
        PublishGate(0.5),
    )


def assert_each_output_written_once(engine: Engine, ids: list[str], stages_per_task: int) -> None:
    with engine.sessions.begin() as session:
        completed = session.scalar(
            select(func.count())
            .select_from(TaskEvent)
            .where(TaskEvent.task_id.in_(ids), TaskEvent.type == "stage.completed")
        )
        rows = session.scalar(
            select(func.count())
            .select_from(StageRun)
            .where(
                StageRun.task_id.in_(ids),
                StageRun.status == "completed",
                StageRun.output.is_not(None),
            )
        )
    assert rows == completed == len(ids) * stages_per_task


def workflow(stages: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"task_type": "custom", "description": "test", "workflow": stages, **extra}


def noop(*deps: str, **params: Any) -> dict[str, Any]:
    """A stage of the test-only agent `test_noop` (tests/agents.py), with `params`."""
    stage: dict[str, Any] = {"agent": "test_noop", "dependencies": list(deps)}
    options = {
        k: params.pop(k)
        for k in ("retries", "retry_backoff", "timeout_s", "on_failure")
        if k in params
    }
    return {**stage, **options, "params": params}
