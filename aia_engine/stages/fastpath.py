"""The SQL executor: the stage lifecycle's common case in one round trip each.

`claim_in_sql` and `complete_in_sql` call `aia_claim_stage` / `aia_complete_stage` (the files
in `stages/sql/`), which follow `stages.machine`'s table and take the same locks in the same
order as the Python executor (`stages.run`). For the outcomes below they answer 'slow',
having changed nothing, and the Python executor decides: they settle the task or count lost
runs, which are written once, in Python. Both run on psycopg directly (`aia_engine.db.direct`):
they are on every stage's path. tests/integration/test_stage_machine_paths.py holds both
executors to the machine, outcome by outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aia_engine.db.direct import direct
from aia_engine.db.session import Sessions
from aia_engine.stages.machine import Claim, ClaimDecision, Completion, DependencyView

# What `aia_claim_stage` leaves to Python: ending a stage of a cancelled task or a skipped one
# (which may settle the task), anything about a run that recorded no outcome (counted in
# `redispatches`, failed as lost at the cap), and a run whose inputs include a failed
# dependency that may fail (its input is its error, not an output).
CLAIMS_LEFT_TO_PYTHON = frozenset({Claim.CANCELLED, Claim.SKIPPED, Claim.LOST, Claim.RERUN})
# What `aia_complete_stage` takes: a success. An error, a task that has ended, and a success
# that would end the workflow with failures are Python's.
COMPLETIONS_IN_SQL = frozenset({Completion.MISSING, Completion.SUPERSEDED, Completion.COMPLETED})


def claim_left_to_python(decision: ClaimDecision, deps: Iterable[DependencyView]) -> bool:
    """Whether `aia_claim_stage` answers 'slow' for this decision of the machine."""
    if decision.lost_run or decision.outcome in CLAIMS_LEFT_TO_PYTHON:
        return True
    return decision.outcome == Claim.RUN and any(d.status != "completed" for d in deps)


_CLAIM = "SELECT outcome, attempt, task_row, inputs FROM aia_claim_stage(%s, %s, %s, %s, %s)"
_COMPLETE = "SELECT aia_complete_stage(%s, %s, %s, %s::jsonb, %s)"


@dataclass(frozen=True)
class SqlClaim:
    outcome: str
    attempt: int
    task_row: dict[str, Any] | None
    inputs: dict[str, dict[str, Any]] | None


def claim_in_sql(
    sessions: Sessions,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    default_timeout_s: float,
    grace_s: float,
) -> SqlClaim:
    outcome, attempt, task_row, inputs = _call(
        sessions, _CLAIM, (task_id, stage, celery_id, default_timeout_s, grace_s)
    )
    return SqlClaim(str(outcome), int(attempt), task_row, inputs)


def complete_in_sql(
    sessions: Sessions,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    output_json: str,
    duration: float,
) -> str:
    """Record a success; `output_json` is the output's JSON text (`storable.encode_output`)."""
    (outcome,) = _call(sessions, _COMPLETE, (task_id, stage, celery_id, output_json, duration))
    return str(outcome)


def _call(sessions: Sessions, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    with direct(sessions) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)
