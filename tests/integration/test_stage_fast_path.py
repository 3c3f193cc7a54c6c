"""The server-side fast path (migration 0004) leaves exactly what the Python runner leaves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from aia_engine.db.models import StageRun, Task, TaskEvent
from aia_engine.stages import execute_stage
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
            (e.seq, e.type, e.stage)
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
            "events": [(t, s) for _, t, s in events if t != "task.queued"],
            "seqs": [q for q, _, _ in events],
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


def test_dependency_not_finished_waits_on_both_paths(engine: Engine) -> None:
    for fast in (True, False):
        settings = engine.services.settings.model_copy(update={"stage_fast_path": fast})
        task_id = engine.submit(WORKFLOW, client_id="fast-path-test")
        outcome = execute_stage(
            engine.sessions, task_id=task_id, stage="d", celery_id="early", settings=settings
        )
        assert outcome.kind == "wait"
