"""The stage state machine, alone: one example per row of its tables, then properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aia_engine.stages.machine import (
    ENDED_STATUSES,
    Claim,
    ClaimDecision,
    Completion,
    DependencyView,
    StageView,
    decide_claim,
    decide_completion,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
FUTURE, PAST = NOW + timedelta(minutes=5), NOW - timedelta(minutes=5)
CAP = 2
DONE = DependencyView("completed")


def claim(
    stage: StageView | None,
    deps: tuple[DependencyView, ...] = (),
    task_status: str | None = "in_progress",
) -> ClaimDecision:
    return decide_claim(
        stage, deps, task_status=task_status, claimant="me", now=NOW, redispatch_cap=CAP
    )


CLAIMS = {
    "no task": (StageView("pending"), (), None, ClaimDecision(Claim.MISSING)),
    "no stage": (None, (), "in_progress", ClaimDecision(Claim.MISSING)),
    "duplicate of a completed stage": (
        StageView("completed"), (), "in_progress", ClaimDecision(Claim.ENDED)
    ),
    "ended beats cancelled": (StageView("skipped"), (), "cancelled", ClaimDecision(Claim.ENDED)),
    "task cancelled": (StageView("pending"), (DONE,), "cancelled", ClaimDecision(Claim.CANCELLED)),
    "cancelled beats held": (
        StageView("running", "other", FUTURE), (), "cancelled", ClaimDecision(Claim.CANCELLED)
    ),
    "held by another worker": (
        StageView("running", "other", FUTURE), (DONE,), "in_progress", ClaimDecision(Claim.HELD)
    ),
    "held even at the cap": (
        StageView("running", "other", FUTURE, redispatches=CAP), (), "in_progress",
        ClaimDecision(Claim.HELD),
    ),
    "lease expired: run again, counted": (
        StageView("running", "other", PAST), (DONE,), "in_progress",
        ClaimDecision(Claim.RERUN, lost_run=True),
    ),
    "no lease is an expired one": (
        StageView("running", "other", None), (), "in_progress",
        ClaimDecision(Claim.RERUN, lost_run=True),
    ),
    "our own claim redelivered (our process died)": (
        StageView("running", "me", FUTURE, redispatches=CAP - 1), (DONE,), "in_progress",
        ClaimDecision(Claim.RERUN, lost_run=True),
    ),
    "lost at the cap": (
        StageView("running", "other", PAST, redispatches=CAP), (DONE,), "in_progress",
        ClaimDecision(Claim.LOST),
    ),
    "lost beats waiting": (
        StageView("running", "me", FUTURE, redispatches=CAP + 3), (DependencyView("pending"),),
        "in_progress", ClaimDecision(Claim.LOST),
    ),
    "a dependency has not ended": (
        StageView("pending"), (DONE, DependencyView("running")), "queued",
        ClaimDecision(Claim.WAIT),
    ),
    "a lost run is counted even when it then waits": (
        StageView("running", "other", PAST), (DependencyView("pending"),), "in_progress",
        ClaimDecision(Claim.WAIT, lost_run=True),
    ),
    "a dependency failed": (
        StageView("pending"), (DependencyView("failed"),), "in_progress",
        ClaimDecision(Claim.SKIPPED),
    ),
    "a dependency was skipped": (
        StageView("pending"), (DONE, DependencyView("skipped", may_fail=True)), "in_progress",
        ClaimDecision(Claim.SKIPPED),
    ),
    "a dependency was cancelled": (
        StageView("pending"), (DependencyView("cancelled"),), "in_progress",
        ClaimDecision(Claim.SKIPPED),
    ),
    "a dependency that may fail failed": (
        StageView("pending"), (DependencyView("failed", may_fail=True),), "in_progress",
        ClaimDecision(Claim.RUN),
    ),
    "ready": (StageView("pending"), (DONE, DONE), "accepted", ClaimDecision(Claim.RUN)),
    "a first stage": (StageView("pending"), (), "queued", ClaimDecision(Claim.RUN)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_claim_table(case: str) -> None:
    stage, deps, task_status, expected = CLAIMS[case]
    assert claim(stage, deps, task_status) == expected


def test_every_claim_outcome_has_an_example() -> None:
    assert {expected.outcome for *_, expected in CLAIMS.values()} == set(Claim)


COMPLETIONS = {
    "no task": (StageView("running", "me"), False, True, Completion.MISSING),
    "no stage": (None, True, True, Completion.MISSING),
    "taken over after our lease ran out": (
        StageView("running", "other"), True, True, Completion.SUPERSEDED
    ),
    "cancelled meanwhile": (StageView("cancelled", "me"), True, True, Completion.SUPERSEDED),
    "sent back to pending by the reconciler": (
        StageView("pending", "me"), True, False, Completion.SUPERSEDED
    ),
    "a success": (StageView("running", "me"), True, True, Completion.COMPLETED),
    "an error with attempts left": (
        StageView("running", "me", attempt=1, max_attempts=3), True, False, Completion.RETRY
    ),
    "an error on the last attempt": (
        StageView("running", "me", attempt=3, max_attempts=3), True, False, Completion.FAILED
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(COMPLETIONS))
def test_completion_table(case: str) -> None:
    stage, task_exists, succeeded, expected = COMPLETIONS[case]
    got = decide_completion(stage, task_exists=task_exists, claimant="me", succeeded=succeeded)
    assert got == expected


def test_every_completion_outcome_has_an_example() -> None:
    assert {expected for *_, expected in COMPLETIONS.values()} == set(Completion)


STATUSES = ["pending", "running", *sorted(ENDED_STATUSES)]
stage_views = st.builds(
    StageView,
    status=st.sampled_from(STATUSES),
    celery_id=st.sampled_from([None, "me", "other"]),
    lease_until=st.sampled_from([None, PAST, NOW, FUTURE]),
    redispatches=st.integers(0, CAP + 1),
)
dep_lists = st.lists(
    st.builds(DependencyView, st.sampled_from(STATUSES), st.booleans()), max_size=3
)
task_statuses = st.sampled_from(
    [None, "accepted", "queued", "in_progress", "completed", "failed", "cancelled"]
)


@given(stage_views, dep_lists, task_statuses)
def test_a_claim_runs_only_what_may_run(
    stage: StageView, deps: list[DependencyView], task_status: str | None
) -> None:
    decision = claim(stage, tuple(deps), task_status)
    if decision.runs:
        assert task_status not in (None, "cancelled")
        assert stage.status in ("pending", "running")
        assert all(d.status == "completed" or (d.status == "failed" and d.may_fail) for d in deps)
        # Never a stage another worker holds under a live lease.
        assert not (
            stage.status == "running"
            and stage.celery_id != "me"
            and stage.lease_until is not None
            and stage.lease_until > NOW
        )
    # A lost run is counted exactly when the stage was found running and was not held or lost.
    assert decision.lost_run == (
        stage.status == "running" and decision.outcome in (Claim.RERUN, Claim.WAIT, Claim.SKIPPED)
    )
    if decision.outcome == Claim.LOST:
        assert stage.redispatches >= CAP


@given(stage_views, st.booleans(), st.booleans())
def test_a_completion_is_recorded_only_by_the_claim_that_holds_the_stage(
    stage: StageView, task_exists: bool, succeeded: bool
) -> None:
    got = decide_completion(stage, task_exists=task_exists, claimant="me", succeeded=succeeded)
    recorded = got in (Completion.COMPLETED, Completion.RETRY, Completion.FAILED)
    assert recorded == (task_exists and stage.status == "running" and stage.celery_id == "me")
