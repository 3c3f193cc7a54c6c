"""Settling a task from its stage rows, without a database: rows are plain ORM objects and the
session only collects the events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aia_engine.db.models import StageRun, Task, TaskEvent
from aia_engine.stages.settle import (
    fail_stage,
    lost_error,
    merged_partials,
    settle_if_done,
    skip_unreachable,
    task_progress,
)
from workflows.spec import StageSpec, WorkflowSpec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Events:
    """Stands in for a Session: `append_event` only adds rows."""

    def __init__(self) -> None:
        self.added: list[TaskEvent] = []

    def add(self, row: TaskEvent) -> None:
        self.added.append(row)

    @property
    def types(self) -> list[tuple[str, str | None, float | None]]:
        return [(e.type, e.stage, e.progress) for e in self.added]


def make(
    statuses: dict[str, str], *, may_fail: tuple[str, ...] = (), task_status: str = "in_progress"
) -> tuple[Task, dict[str, StageRun]]:
    """A diamond a -> (b, c) -> d, with each stage in the given status."""
    deps = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    spec = WorkflowSpec(
        {
            n: StageSpec(
                n,
                "noop",
                dependencies=d,
                on_failure="continue" if n in may_fail else "fail_workflow",
            )
            for n, d in deps.items()
        }
    )
    task = Task(
        id="t1", workflow=spec.to_dict(), status=task_status, progress=0.0, event_seq=0, error=None
    )
    stages = {
        n: StageRun(
            name=n,
            status=statuses.get(n, "pending"),
            progress=0.0,
            output={"from": n} if statuses.get(n) == "completed" else None,
            error={"code": "E022", "message": n} if statuses.get(n) == "failed" else None,
            attempt=1,
            redispatches=0,
            partial_results=None,
        )
        for n in deps
    }
    return task, stages


def test_progress_counts_ended_stages_whole_and_running_ones_in_part() -> None:
    _, stages = make({"a": "completed", "b": "failed", "c": "running"})
    stages["c"].progress = 50.0
    assert task_progress(stages) == 62.5  # (1 + 1 + 0.5 + 0) / 4
    assert task_progress({}) == 0.0


def test_partials_merge_in_stage_order() -> None:
    _, stages = make({})
    stages["a"].partial_results = {"x": 1, "y": 1}
    stages["c"].partial_results = {"y": 2}
    assert merged_partials(stages) == {"x": 1, "y": 2}


def test_a_task_with_open_stages_is_not_settled_but_its_progress_is() -> None:
    task, stages = make({"a": "completed", "b": "completed"})
    session: Any = Events()
    assert settle_if_done(session, task, stages, now=NOW) is False
    assert task.status == "in_progress" and task.progress == 50.0 and not session.added


def test_the_last_stage_completes_the_task_with_every_output() -> None:
    task, stages = make(dict.fromkeys("abcd", "completed"))
    session: Any = Events()
    assert settle_if_done(session, task, stages, now=NOW) is True
    assert task.status == "completed" and task.progress == 100.0 and task.finished_at == NOW
    assert task.results == {n: {"from": n} for n in "abcd"}
    assert session.types == [("task.completed", None, 100.0)]
    assert session.added[0].payload == {"failed_stages": []}


def test_a_failure_that_may_fail_still_completes_the_task_and_is_listed() -> None:
    task, stages = make(
        {"a": "completed", "b": "failed", "c": "completed", "d": "completed"}, may_fail=("b",)
    )
    session: Any = Events()
    assert settle_if_done(session, task, stages, now=NOW)
    assert task.status == "completed" and session.added[0].payload == {"failed_stages": ["b"]}
    assert task.results is not None and "b" not in task.results


def test_a_fatal_failure_fails_the_task_with_the_first_stage_error() -> None:
    task, stages = make({"a": "completed", "b": "failed", "c": "completed", "d": "skipped"})
    session: Any = Events()
    assert settle_if_done(session, task, stages, now=NOW)
    assert task.status == "failed"
    assert task.error == {
        "code": "E022", "message": "b", "stage": "b", "failed_stages": ["b"], "skipped_stages": ["d"]
    }  # fmt: skip
    assert session.types == [("task.failed", None, 100.0)]


def test_an_ended_task_is_left_as_it_is() -> None:
    task, stages = make(dict.fromkeys("abcd", "completed"), task_status="cancelled")
    session: Any = Events()
    assert settle_if_done(session, task, stages, now=NOW) is False
    assert task.status == "cancelled" and not session.added


def test_a_fatal_failure_skips_only_what_is_downstream_and_pending() -> None:
    task, stages = make({"a": "completed", "b": "failed", "c": "running"})
    session: Any = Events()
    assert skip_unreachable(session, task, stages, "b", now=NOW) == ["d"]
    assert stages["d"].status == "skipped" and stages["c"].status == "running"
    assert stages["d"].error is not None and stages["d"].error["code"] == "E023"
    assert session.types == [("stage.skipped", "d", 75.0)]  # a, b, d ended; c at 0 %


def test_failing_a_lost_stage_skips_its_dependents_and_settles_the_task() -> None:
    task, stages = make({"a": "completed", "b": "completed", "c": "running"})
    stages["c"].redispatches = 2
    error = lost_error("c", stages["c"], 2)
    assert error["code"] == "E021" and error["details"]["runs_lost"] == 3
    session: Any = Events()
    fail_stage(session, task, stages, "c", error, now=NOW)
    assert stages["c"].status == "failed" and stages["c"].lease_until is None
    assert stages["d"].status == "skipped"
    assert task.status == "failed" and task.error is not None and task.error["stage"] == "c"
    assert [t for t, *_ in session.types] == ["stage.failed", "stage.skipped", "task.failed"]
    # Each event records the progress once its change is made.
    assert [p for *_, p in session.types] == [75.0, 100.0, 100.0]
