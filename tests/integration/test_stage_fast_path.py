"""The server-side fast path (stages/sql/*.sql) leaves exactly what the Python runner leaves
(end to end; tests/integration/test_stage_machine_paths.py checks each outcome)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from aia_engine.db.models import StageRun, Task, TaskEvent
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.stages.fastpath import claim_in_sql, complete_in_sql
from aia_engine.stages.run import execute_stage
from tests.integration.conftest import Engine, noop, workflow

WORKFLOW = workflow(
    {"a": noop(echo=1), "b": noop("a", echo=2), "c": noop("a"), "d": noop("b", "c")}
)
ORDER = ["a", "b", "c", "d"]


def run_in_process(engine: Engine, *, fast: bool) -> dict[str, Any]:
    settings = engine.services.settings.model_copy(update={"stage_fast_path": fast})
    task_id = engine.submit(WORKFLOW, client_id="fast-path-test")
    # Run the stages here, in order, as a worker would (the published messages find them ended).
    outcomes = [
        execute_stage(
            engine.sessions, task_id=task_id, stage=s, celery_id=f"c-{s}", settings=settings
        ).kind
        for s in ORDER
    ]
    # A duplicate delivery of an ended stage changes nothing.
    outcomes.append(
        execute_stage(
            engine.sessions, task_id=task_id, stage="a", celery_id="dup", settings=settings
        ).kind
    )
    with engine.sessions.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        stages = {
            s.name: (s.status, s.attempt, s.output, s.progress)
            for s in session.scalars(select(StageRun).where(StageRun.task_id == task_id))
        }
        events = [
            (e.seq, e.type, e.stage, e.progress)
            for e in session.scalars(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq)
            )
        ]
        return {
            "outcomes": outcomes,
            "status": task.status,
            "progress": task.progress,
            "results": task.results,
            "event_seq": task.event_seq,
            "stages": stages,
            "events": [(t, s, p) for _, t, s, p in events if t != "task.queued"],
            "seqs": [q for q, *_ in events],
        }


def test_fast_path_and_python_runner_leave_the_same_state(engine: Engine) -> None:
    fast, slow = run_in_process(engine, fast=True), run_in_process(engine, fast=False)
    assert (
        fast["outcomes"]
        == slow["outcomes"]
        == ["completed", "completed", "completed", "completed", "ended"]
    )
    for key in ("status", "progress", "results", "stages", "events"):
        assert fast[key] == slow[key], key
    assert fast["seqs"] == list(range(1, len(fast["seqs"]) + 1))
    assert fast["status"] == "completed" and fast["results"]["b"]["echo"] == 2
    # Each event records the task's progress right after it, on both paths alike.
    assert [(t, p) for t, _, p in fast["events"]] == [
        ("task.accepted", 0.0),
        ("task.started", 0.0),
        ("stage.started", 0.0),
        ("stage.completed", 25.0),
        ("stage.started", 25.0),
        ("stage.completed", 50.0),
        ("stage.started", 50.0),
        ("stage.completed", 75.0),
        ("stage.started", 75.0),
        ("stage.completed", 100.0),
        ("task.completed", 100.0),
    ]


def test_dependency_not_finished_waits_on_both_paths(engine: Engine) -> None:
    for fast in (True, False):
        settings = engine.services.settings.model_copy(update={"stage_fast_path": fast})
        task_id = engine.submit(WORKFLOW, client_id="fast-path-test")
        outcome = execute_stage(
            engine.sessions, task_id=task_id, stage="d", celery_id="early", settings=settings
        )
        assert outcome.kind == "wait"


def test_fast_path_leaves_pooled_connections_as_the_pool_hands_them_out(engine: Engine) -> None:
    sessions = make_sessions(
        make_engine(engine.services.settings, pool_size=1, synchronous_commit="off")
    )
    pool_engine = sessions.kw["bind"]
    task_id = engine.submit(WORKFLOW, client_id="fast-path-test")
    claim = claim_in_sql(
        sessions, task_id=task_id, stage="a", celery_id="c-a", default_timeout_s=20, grace_s=2
    )
    assert claim.outcome == "claimed" and claim.inputs == {}
    assert claim.task_row is not None and claim.task_row["stage"]["agent"] == "test_noop"
    # The connection the claim ran on is back in the pool out of autocommit: a session's
    # transaction on it is still one transaction (its rollback undoes its write).
    with sessions() as session:
        raw = session.connection().connection.driver_connection
        assert raw is not None and raw.autocommit is False
        session.execute(
            text("UPDATE tasks SET description = 'changed' WHERE id = :t"), {"t": task_id}
        )
        session.rollback()
    with engine.sessions.begin() as session:
        assert session.get(Task, task_id).description == "test"  # type: ignore[union-attr]
    pool_engine.dispose()


def test_fast_path_reconnects_after_losing_its_connection(engine: Engine) -> None:
    sessions = make_sessions(
        make_engine(engine.services.settings, pool_size=1, synchronous_commit="off")
    )
    pool_engine = sessions.kw["bind"]
    task_id = engine.submit(WORKFLOW, client_id="fast-path-test")
    pooled = pool_engine.raw_connection()
    backend = pooled.driver_connection.info.backend_pid  # type: ignore[union-attr]
    pooled.close()
    with engine.sessions.begin() as session:
        session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
    # The broken connection surfaces as SQLAlchemy's OperationalError (the stage task retries
    # on it) and is dropped from the pool ...
    with pytest.raises(OperationalError):
        claim_in_sql(
            sessions, task_id=task_id, stage="a", celery_id="c-a", default_timeout_s=20, grace_s=2
        )
    # ... so the retry gets a fresh one and claims the stage.
    claim = claim_in_sql(
        sessions, task_id=task_id, stage="a", celery_id="c-a", default_timeout_s=20, grace_s=2
    )
    assert claim.outcome == "claimed"
    assert (
        complete_in_sql(
            sessions,
            task_id=task_id,
            stage="a",
            celery_id="c-a",
            output_json='{"x": 1}',
            duration=0.01,
        )
        == "completed"
    )
    pool_engine.dispose()


def test_a_database_error_in_the_fast_path_is_sqlalchemys(engine: Engine) -> None:
    sessions = make_sessions(
        make_engine(engine.services.settings, pool_size=1, synchronous_commit="off")
    )
    with pytest.raises(DBAPIError) as caught:
        # NaN is not a number JSON accepts: PostgreSQL refuses the output.
        complete_in_sql(
            sessions, task_id="t", stage="a", celery_id="c", output_json='{"x": NaN}', duration=0
        )
    assert not isinstance(caught.value, OperationalError)
    # The connection stays usable.
    assert (
        claim_in_sql(
            sessions,
            task_id="task_missing",
            stage="a",
            celery_id="c",
            default_timeout_s=1,
            grace_s=1,
        ).outcome
        == "missing"
    )
    sessions.kw["bind"].dispose()


def ending(engine: Engine, task_id: str) -> dict[str, Any]:
    with engine.sessions.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        rows = session.scalars(select(StageRun).where(StageRun.task_id == task_id))
        stages = {
            r.name: (r.status, (r.error or {}).get("code"), (r.error or {}).get("details"))
            for r in rows
        }
        events = [
            (e.type, e.stage)
            for e in session.scalars(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq)
            )
            if e.type != "task.queued"
        ]
        return {"status": task.status, "code": (task.error or {}).get("code"), "stages": stages,
                "events": events}  # fmt: skip


def run_stages(engine: Engine, task_id: str, fast: bool, order: list[str]) -> list[str]:
    settings = engine.services.settings.model_copy(
        update={
            "stage_fast_path": fast,
            "max_stage_output_bytes": 2048,
            "max_stage_redispatches": 1,
        }
    )
    return [
        execute_stage(
            engine.sessions, task_id=task_id, stage=s, celery_id=f"c-{s}", settings=settings
        ).kind
        for s in order
    ]


UNSTORABLE = {
    "not_json": workflow(
        {"a": {"agent": "data_analysis_agent", "dependencies": []}, "b": noop("a")},
        requirements={"records": [{"x": 1e308}, {"x": -1e308}]},
    ),
    "too_large": workflow({"a": noop(pad_bytes=4096), "b": noop("a")}),
    "refused": workflow({"a": noop(emit_nul=True), "b": noop("a")}),
}


@pytest.mark.parametrize("reason", sorted(UNSTORABLE))
def test_an_unstorable_output_fails_the_stage_alike_on_both_paths(
    engine: Engine, reason: str
) -> None:
    seen = []
    for fast in (True, False):
        task_id = engine.submit(UNSTORABLE[reason], client_id="fast-path-test")
        assert run_stages(engine, task_id, fast, ["a", "b"]) == ["failed", "ended"]
        seen.append(ending(engine, task_id))
    assert seen[0] == seen[1]
    state = seen[0]
    assert state["status"] == "failed" and state["code"] == "E020"
    assert state["stages"]["a"][1] == "E020" and state["stages"]["a"][2]["reason"] == reason
    assert state["stages"]["b"][0] == "skipped"


def test_a_redelivery_after_a_lost_run_is_counted_then_fails_alike_on_both_paths(
    engine: Engine,
) -> None:
    seen = []
    for fast in (True, False):
        task_id = engine.submit(workflow({"a": noop()}), client_id="fast-path-test")
        # As a pool process that died mid-run leaves it: running under this message's claim.
        with engine.sessions.begin() as session:
            session.execute(
                text(
                    "UPDATE stage_runs SET status = 'running', celery_id = 'c-a', attempt = 1,"
                    " lease_until = now() + interval '1 hour' WHERE task_id = :t"
                ),
                {"t": task_id},
            )
        # Below the cap (1): the run is made again, and counted.
        assert run_stages(engine, task_id, fast, ["a"]) == ["completed"]
        with engine.sessions.begin() as session:
            row = session.scalars(select(StageRun).where(StageRun.task_id == task_id)).one()
            assert row.redispatches == 1 and row.attempt == 2
            session.execute(
                text(
                    "UPDATE stage_runs SET status = 'running', output = NULL, finished_at = NULL,"
                    " lease_until = now() + interval '1 hour' WHERE task_id = :t"
                ),
                {"t": task_id},
            )
            session.execute(
                text("UPDATE tasks SET status = 'in_progress' WHERE id = :t"), {"t": task_id}
            )
        # At the cap: the stage fails as lost, the task settles.
        assert run_stages(engine, task_id, fast, ["a"]) == ["lost"]
        seen.append(ending(engine, task_id))
    assert seen[0] == seen[1]
    assert seen[0]["status"] == "failed" and seen[0]["code"] == "E021"
    assert seen[0]["stages"]["a"][:2] == ("failed", "E021")
