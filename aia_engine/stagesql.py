"""The stage lifecycle's common case in one round trip each (server-side SQL, migration 0004).

`claim_in_sql` and `complete_in_sql` call `aia_claim_stage` / `aia_complete_stage`, which take
the same locks in the same order as the Python runner in `aia_engine.stages`. They answer
'slow' for anything unusual, having changed nothing, and the Python runner takes over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from aia_engine.db.session import Sessions, autocommit

_CLAIM = text(
    "SELECT outcome, attempt, task_row, inputs FROM aia_claim_stage(:t, :s, :c, :timeout, :grace)"
)
_COMPLETE = text("SELECT aia_complete_stage(:t, :s, :c, CAST(:output AS jsonb), :duration)")


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
    with autocommit(sessions) as conn:
        row = conn.execute(
            _CLAIM,
            {
                "t": task_id,
                "s": stage,
                "c": celery_id,
                "timeout": default_timeout_s,
                "grace": grace_s,
            },
        ).one()
    return SqlClaim(str(row.outcome), int(row.attempt), row.task_row, row.inputs)


def complete_in_sql(
    sessions: Sessions,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    output: dict[str, Any],
    duration: float,
) -> str:
    with autocommit(sessions) as conn:
        return str(
            conn.execute(
                _COMPLETE,
                {
                    "t": task_id,
                    "s": stage,
                    "c": celery_id,
                    "output": json.dumps(output),
                    "duration": duration,
                },
            ).scalar_one()
        )
