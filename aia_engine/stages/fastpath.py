"""The stage lifecycle's common case in one round trip each (server-side SQL, migration 0004).

`claim_in_sql` and `complete_in_sql` call `aia_claim_stage` / `aia_complete_stage`, which take
the same locks in the same order as the Python runner in `aia_engine.stages`. They answer
'slow' for anything unusual, having changed nothing, and the Python runner takes over. Both
run on psycopg directly (`aia_engine.db.direct`): they are on every stage's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aia_engine.db.direct import direct
from aia_engine.db.session import Sessions

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
