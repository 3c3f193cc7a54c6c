"""What cancel and retry decide from a task's stage rows, without a database (rows are plain
ORM objects)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from aia_engine.db.models import StageRun
from aia_engine.tasks.control import reset_stage, stages_to_cancel, stages_to_retry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ["pending", "running", "completed", "failed", "skipped", "cancelled"]


def rows(statuses: dict[str, str]) -> dict[str, StageRun]:
    return {
        name: StageRun(
            name=name,
            status=status,
            celery_id=f"celery-{name}" if status in ("running", "completed") else None,
            progress=100.0 if status == "completed" else 40.0,
            attempt=2,
            output={"from": name} if status == "completed" else None,
            error={"code": "E022"} if status == "failed" else None,
            partial_results={"half": True},
            started_at=NOW,
            finished_at=NOW if status != "running" else None,
            lease_until=NOW if status == "running" else None,
        )
        for name, status in statuses.items()
    }


def test_cancel_ends_what_has_not_ended_and_revokes_what_runs() -> None:
    stages = rows({"a": "completed", "b": "running", "c": "pending", "d": "failed"})
    assert stages_to_cancel(stages) == (["b", "c"], ["celery-b"])


def test_a_running_stage_without_a_celery_id_is_cancelled_but_not_revoked() -> None:
    stages = rows({"a": "running"})
    stages["a"].celery_id = None
    assert stages_to_cancel(stages) == (["a"], [])


def test_retry_reruns_everything_that_did_not_complete_and_reuses_the_rest() -> None:
    stages = rows({"a": "completed", "b": "failed", "c": "skipped", "d": "cancelled"})
    assert stages_to_retry(stages) == (["b", "c", "d"], ["a"], 25.0)


def test_retry_of_no_stages_starts_at_zero() -> None:
    assert stages_to_retry({}) == ([], [], 0.0)


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(STATUSES), min_size=1))
def test_retry_splits_every_stage_once_in_workflow_order(statuses: dict[str, str]) -> None:
    stages = rows(statuses)
    rerun, reused, progress = stages_to_retry(stages)
    assert sorted(rerun + reused) == sorted(stages)
    assert [n for n in stages if n in rerun] == rerun  # order kept
    assert all(stages[n].status == "completed" for n in reused)
    assert 0.0 <= progress <= 100.0
    assert (progress == 100.0) == (not rerun)


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(STATUSES), min_size=1))
def test_cancel_never_touches_an_ended_stage(statuses: dict[str, str]) -> None:
    stages = rows(statuses)
    ending, running = stages_to_cancel(stages)
    assert set(ending) == {n for n, s in statuses.items() if s in ("pending", "running")}
    assert set(running) == {f"celery-{n}" for n, s in statuses.items() if s == "running"}


def test_reset_leaves_a_stage_as_before_its_first_run() -> None:
    row = rows({"b": "failed"})["b"]
    reset_stage(row, NOW)
    assert (row.status, row.attempt, row.progress, row.updated_at) == ("pending", 0, 0.0, NOW)
    assert row.error is row.output is row.partial_results is row.celery_id is None
    assert row.started_at is row.finished_at is row.lease_until is None
