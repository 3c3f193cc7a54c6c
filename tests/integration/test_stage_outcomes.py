"""Every stage ends: an output PostgreSQL cannot store, or one over the size limit, fails its
stage with E020; a stage whose runs keep ending without an outcome (its worker dies, its lease
runs out) fails as lost with E021 after AIA_MAX_STAGE_REDISPATCHES more runs. Nothing loops."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, text

from aia_engine.clock import utcnow
from aia_engine.db.models import StageRun
from aia_engine.limits.quota import ActiveTasks
from aia_engine.stages.reconcile import reconcile
from tests.integration.conftest import Engine, Services, WorkerFactory, _stop, noop, workflow

OUTPUT_LIMIT = 4096
REDISPATCH_CAP = 2
LIMITS = {
    "AIA_MAX_STAGE_OUTPUT_BYTES": str(OUTPUT_LIMIT),
    "AIA_MAX_STAGE_REDISPATCHES": str(REDISPATCH_CAP),
}
REPRO = {
    "task_type": "data_analysis",
    "requirements": {"records": [{"x": 1e308}, {"x": -1e308}]},
}


@pytest.fixture(scope="module")
def limited_worker(start_worker: WorkerFactory) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker("limited", concurrency=2, env=LIMITS)
    yield proc
    _stop(proc)


def stage_row(engine: Engine, task_id: str, name: str) -> StageRun:
    with engine.sessions.begin() as session:
        row = session.scalars(
            select(StageRun).where(StageRun.task_id == task_id, StageRun.name == name)
        ).one()
        session.expunge(row)
        return row


@pytest.mark.usefixtures("limited_worker")
def test_an_output_postgresql_cannot_store_fails_the_task_promptly(engine: Engine) -> None:
    # The repro: the analysis holds -Infinity / Infinity, which JSON (and jsonb) refuse.
    started = time.monotonic()
    task_id = engine.submit(REPRO)
    view = engine.wait(task_id, timeout=30)
    assert view["status"] == "failed", view
    assert time.monotonic() - started < 30
    analysis = stage_row(engine, task_id, "analysis")
    assert analysis.status == "failed" and analysis.lease_until is None
    assert analysis.error is not None and analysis.error["code"] == "E020"
    assert analysis.error["type"] == "StageOutputNotStorable"
    assert analysis.error["details"]["reason"] == "not_json"
    assert view["error"]["code"] == "E020" and view["error"]["stage"] == "analysis"


@pytest.mark.usefixtures("limited_worker")
def test_an_agent_crash_and_the_stages_it_skips_have_their_own_codes(engine: Engine) -> None:
    # E022 and E023, not the API's E013 (quota exceeded) and E012 (too many streams) they once
    # borrowed.
    task_id = engine.submit(
        workflow({"buggy": noop(raise_error="no key 'x'"), "after": noop("buggy")})
    )
    view = engine.wait(task_id, timeout=30)
    assert view["status"] == "failed", view
    buggy = stage_row(engine, task_id, "buggy")
    assert buggy.error == {
        "type": "RuntimeError",
        "code": "E022",
        "message": "no key 'x'",
        "details": {},
    }
    after = stage_row(engine, task_id, "after")
    assert after.status == "skipped" and after.error is not None
    assert after.error["code"] == "E023" and after.error["type"] == "StageSkipped"
    assert view["error"]["code"] == "E022" and view["error"]["skipped_stages"] == ["after"]


@pytest.mark.usefixtures("limited_worker")
def test_an_output_over_the_size_limit_fails_its_stage(engine: Engine) -> None:
    task_id = engine.submit(
        workflow({"big": noop(pad_bytes=OUTPUT_LIMIT * 2), "after": noop("big")})
    )
    view = engine.wait(task_id, timeout=30)
    assert view["status"] == "failed", view
    big = stage_row(engine, task_id, "big")
    assert big.error is not None and big.error["code"] == "E020"
    assert big.error["details"]["reason"] == "too_large"
    assert big.error["details"]["limit_bytes"] == OUTPUT_LIMIT
    assert big.error["details"]["size_bytes"] > OUTPUT_LIMIT
    assert stage_row(engine, task_id, "after").status == "skipped"
    # A small output still passes.
    ok = engine.submit(workflow({"small": noop(pad_bytes=OUTPUT_LIMIT // 4)}))
    assert engine.wait(ok, timeout=30)["status"] == "completed"


def test_a_stage_that_kills_its_worker_process_fails_as_lost_and_frees_its_slot(
    engine: Engine, services: Services, limited_worker: subprocess.Popen[bytes]
) -> None:
    # A poison message: each run ends the worker's pool process, the message is redelivered.
    quota = ActiveTasks(redis.Redis.from_url(services.redis_url), engine.sessions)
    task_id = engine.submit(workflow({"crash": noop(exit_process=True)}), client_id="poison")
    quota.reserve("poison", [task_id], cap=1)
    view = engine.wait(task_id, timeout=90)
    assert view["status"] == "failed", view
    crash = stage_row(engine, task_id, "crash")
    assert crash.error is not None and crash.error["code"] == "E021"
    assert crash.error["type"] == "StageLost"
    assert crash.redispatches == REDISPATCH_CAP
    assert view["error"]["code"] == "E021"
    # The failure's event records the progress the task had once the stage ended (its only
    # stage: 100), as GET /tasks/{id} said then; not the progress from before it failed.
    with engine.sessions.begin() as session:
        failed_at = session.execute(
            text("SELECT progress FROM task_events WHERE task_id = :t AND type = 'stage.failed'"),
            {"t": task_id},
        ).scalar_one()
    assert failed_at == 100.0
    # The client's active-task slot is free again, and the worker still serves.
    assert quota.usage("poison") == 0
    assert limited_worker.poll() is None
    after = engine.submit(workflow({"fine": noop()}), client_id="poison")
    assert engine.wait(after, timeout=30)["status"] == "completed"


@pytest.mark.usefixtures("limited_worker")
def test_the_reconciler_redispatches_a_lost_stage_then_fails_it_at_the_cap(
    engine: Engine,
) -> None:
    settings = engine.services.settings.model_copy(
        update={"max_stage_redispatches": REDISPATCH_CAP}
    )
    task_id = engine.submit(workflow({"a": noop(), "b": noop("a")}))
    assert engine.wait(task_id, timeout=30)["status"] == "completed"

    def look_lost(redispatches: int) -> None:
        # As a worker that died holding "a" leaves it: running, its lease run out.
        past = utcnow() - timedelta(hours=1)
        with engine.sessions.begin() as session:
            session.execute(
                text(
                    "UPDATE tasks SET status = 'in_progress', finished_at = NULL, "
                    "updated_at = :past, dispatched_at = :past WHERE id = :t"
                ),
                {"t": task_id, "past": past},
            )
            session.execute(
                text(
                    "UPDATE stage_runs SET status = 'running', celery_id = 'gone', output = NULL,"
                    " lease_until = :past, finished_at = NULL, redispatches = :n"
                    " WHERE task_id = :t AND name = 'a'"
                ),
                {"t": task_id, "past": past, "n": redispatches},
            )
            session.execute(
                text(
                    "UPDATE stage_runs SET status = 'pending', output = NULL, finished_at = NULL"
                    " WHERE task_id = :t AND name = 'b'"
                ),
                {"t": task_id},
            )

    # Below the cap: sent again (and counted), and it completes.
    look_lost(REDISPATCH_CAP - 1)
    report = reconcile(engine.sessions, engine.publisher, settings)
    assert report.redispatched.get(task_id) == ["a", "b"]
    assert engine.wait(task_id, timeout=30)["status"] == "completed"
    assert stage_row(engine, task_id, "a").redispatches == REDISPATCH_CAP
    # At the cap: not sent again; the stage fails as lost and the task settles.
    look_lost(REDISPATCH_CAP)
    report = reconcile(engine.sessions, engine.publisher, settings)
    assert task_id not in report.redispatched and report.lost.get(task_id) == ["a"]
    view = engine.get(task_id)
    assert view["status"] == "failed" and view["error"]["code"] == "E021"
    assert stage_row(engine, task_id, "a").status == "failed"
    assert stage_row(engine, task_id, "b").status == "skipped"
