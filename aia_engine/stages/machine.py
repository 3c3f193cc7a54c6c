"""The stage state machine: what a claim or a completion of a stage does. Pure: no I/O.

Both executors follow it: the Python one (`stages.run`) calls these functions on the rows it
locked; the SQL one (`stages/sql/*.sql`, called by `stages.fastpath`) is written to the same
table and tested against it, outcome by outcome (tests/integration/test_stage_machine_paths.py).

A claim (a delivery of a stage's message), checked in this order:

| outcome     | when                                                                          |
|-------------|-------------------------------------------------------------------------------|
| MISSING     | the task or the stage row does not exist                                      |
| ENDED       | the stage is completed, failed, skipped or cancelled (a duplicate delivery)   |
| CANCELLED   | the task is cancelled: the stage ends cancelled                                |
| HELD        | the stage runs under another claim whose lease has not run out                |
| LOST        | the stage runs under our claim or an expired one (a run that recorded no      |
|             | outcome) and `redispatches` has reached the cap: it fails with E021           |
| WAIT        | a dependency has not ended                                                    |
| SKIPPED     | a dependency ended without output and may not fail (on_failure=fail_workflow) |
| RERUN       | the stage runs under our claim or an expired one, below the cap: run again    |
| RUN         | the stage is pending and every dependency ended usably: claim and run it      |

A claim that finds such a lost run counts it (`redispatches + 1`) before it looks at the
dependencies (`ClaimDecision.lost_run`), whatever it then does (RERUN, WAIT or SKIPPED).

A completion (a run handing in its result):

| outcome     | when                                                                          |
|-------------|-------------------------------------------------------------------------------|
| MISSING     | the task or the stage row does not exist                                      |
| SUPERSEDED  | the stage is no longer running under our claim (cancelled, or taken over      |
|             | after our lease ran out): our result is not the stage's and is dropped         |
| COMPLETED   | a success: the stage completes (and the task settles if that was the last)    |
| RETRY       | an error with attempts left: the stage goes back to pending                   |
| FAILED      | an error on the last attempt: the stage fails                                  |
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

ENDED_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})


class Claim(enum.Enum):
    MISSING = "missing"
    ENDED = "ended"
    CANCELLED = "cancelled"
    HELD = "held"
    LOST = "lost"
    WAIT = "wait"
    SKIPPED = "skipped"
    RERUN = "rerun"
    RUN = "run"


class Completion(enum.Enum):
    MISSING = "missing"
    SUPERSEDED = "superseded"
    COMPLETED = "completed"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class StageView:
    """What the machine reads of a stage row."""

    status: str
    celery_id: str | None = None
    lease_until: datetime | None = None
    redispatches: int = 0
    attempt: int = 0
    max_attempts: int = 1


@dataclass(frozen=True)
class DependencyView:
    """A dependency's status, and whether its failure lets its dependents run (on_failure)."""

    status: str
    may_fail: bool = False


@dataclass(frozen=True)
class ClaimDecision:
    outcome: Claim
    lost_run: bool = False  # a run that recorded no outcome is counted in `redispatches`

    @property
    def runs(self) -> bool:
        return self.outcome in (Claim.RUN, Claim.RERUN)


def decide_claim(
    stage: StageView | None,
    deps: Sequence[DependencyView],
    *,
    task_status: str | None,
    claimant: str,
    now: datetime,
    redispatch_cap: int,
) -> ClaimDecision:
    """What a delivery of a stage's message does; `task_status` None: no such task."""
    if task_status is None or stage is None:
        return ClaimDecision(Claim.MISSING)
    if stage.status in ENDED_STATUSES:
        return ClaimDecision(Claim.ENDED)
    if task_status == "cancelled":
        return ClaimDecision(Claim.CANCELLED)
    lost_run = stage.status == "running"
    if lost_run and stage.celery_id != claimant and _lease_holds(stage.lease_until, now):
        return ClaimDecision(Claim.HELD)
    if lost_run and stage.redispatches >= redispatch_cap:
        return ClaimDecision(Claim.LOST)
    if any(d.status not in ENDED_STATUSES for d in deps):
        return ClaimDecision(Claim.WAIT, lost_run)
    if any(blocks(d) for d in deps):
        return ClaimDecision(Claim.SKIPPED, lost_run)
    return ClaimDecision(Claim.RERUN if lost_run else Claim.RUN, lost_run)


def blocks(dep: DependencyView) -> bool:
    """A dependency that ended without output blocks its dependents unless it may fail."""
    if dep.status == "completed":
        return False
    if dep.status == "failed":
        return not dep.may_fail
    return True


def decide_completion(
    stage: StageView | None, *, task_exists: bool, claimant: str, succeeded: bool
) -> Completion:
    """What a run's result does to its stage."""
    if not task_exists or stage is None:
        return Completion.MISSING
    if stage.status != "running" or stage.celery_id != claimant:
        return Completion.SUPERSEDED
    if succeeded:
        return Completion.COMPLETED
    if stage.attempt < stage.max_attempts:
        return Completion.RETRY
    return Completion.FAILED


def _lease_holds(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is not None and lease_until > now
