"""Running one stage: claim it in PostgreSQL, load its inputs, call its agent, store the output.

At-least-once delivery, exactly-once effects: a stage whose row has ended is skipped on
redelivery; a claim carries a lease (the stage's hard time limit), so a duplicate message does
not run a stage another worker holds; the output is written only by the claim that holds the
row, so it is written once. A stage also checks here that its dependencies ended, whatever
the canvas says, so no message can start it early.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy.orm import Session

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import get_agent
from aia_engine.datasets.store import records_for_task
from aia_engine.db.models import TERMINAL_STAGE, StageRun, StageStatus, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import EngineError, StageTimedOut
from aia_engine.progress import ProgressReporter
from aia_engine.publishing import utcnow
from aia_engine.settings import Settings
from aia_engine.stagesql import claim_in_sql, complete_in_sql
from aia_engine.tasks.events import append_event, lock_task_with_stages, relax_commit
from aia_engine.tasks.settle import settle_if_done, skip_unreachable
from workflows.spec import StageSpec, spec_from_dict, stage_from_dict

log = logging.getLogger(__name__)

OutcomeKind = Literal[
    "completed",
    "failed",
    "retry",
    "wait",
    "skipped",
    "ended",
    "held",
    "superseded",
    "cancelled",
    "missing",
]


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery of a stage; `retry` and `wait` ask to run again later."""

    kind: OutcomeKind
    countdown: float = 0.0


@dataclass(frozen=True)
class _Claim:
    spec: StageSpec
    ctx_inputs: dict[str, dict[str, Any]]
    requirements: dict[str, Any]
    context: dict[str, Any]
    description: str
    attempt: int
    soft_limit: float


def execute_stage(
    sessions: Sessions,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    settings: Settings,
    timeout_errors: tuple[type[BaseException], ...] = (),
) -> Outcome:
    """Run one delivery of `stage` of `task_id`; see the module docstring."""
    claim: _Claim | Outcome | None = None
    if settings.stage_fast_path:
        claim = _claim_fast(
            sessions, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
    if claim is None:
        claim = _claim(
            sessions, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
    if isinstance(claim, Outcome):
        return claim
    started = time.monotonic()
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    try:
        output = _run_agent(
            sessions, claim, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
    except timeout_errors as exc:
        error = StageTimedOut(
            f"stage {stage!r} exceeded its time limit of {claim.soft_limit:g}s", stage=stage
        ).to_dict()
        log.warning("stage %s of task %s timed out: %s", stage, task_id, exc)
    except EngineError as exc:
        error = exc.to_dict()
    except Exception as exc:
        error = {
            "type": type(exc).__name__,
            "code": "E013",
            "message": str(exc)[:2000],
            "details": {},
        }
        log.exception("agent %s failed in stage %s of task %s", claim.spec.agent, stage, task_id)
    duration = time.monotonic() - started
    if settings.stage_fast_path and error is None and output is not None:
        fast = complete_in_sql(
            sessions,
            task_id=task_id,
            stage=stage,
            celery_id=celery_id,
            output=output,
            duration=duration,
        )
        if fast != "slow":
            return Outcome(fast)  # type: ignore[arg-type]
    return _record(
        sessions,
        claim,
        task_id=task_id,
        stage=stage,
        celery_id=celery_id,
        output=output,
        error=error,
        duration=duration,
    )


def _claim_fast(
    sessions: Sessions, *, task_id: str, stage: str, celery_id: str, settings: Settings
) -> _Claim | Outcome | None:
    """The common case in one round trip; None when the Python path must decide."""
    got = claim_in_sql(
        sessions,
        task_id=task_id,
        stage=stage,
        celery_id=celery_id,
        default_timeout_s=settings.default_stage_timeout_s,
        grace_s=settings.stage_hard_limit_grace_s,
    )
    if got.outcome == "slow":
        return None
    if got.outcome == "wait":
        return Outcome("wait", settings.dependency_wait_s)
    if got.outcome != "claimed":
        return Outcome(got.outcome)  # type: ignore[arg-type]
    assert got.task_row is not None
    spec = stage_from_dict(stage, got.task_row["stage"])
    return _Claim(
        spec,
        dict(got.inputs or {}),
        dict(got.task_row["requirements"]),
        dict(got.task_row["context"]),
        str(got.task_row["description"]),
        got.attempt,
        spec.timeout_s or settings.default_stage_timeout_s,
    )


def _claim(
    sessions: Sessions, *, task_id: str, stage: str, celery_id: str, settings: Settings
) -> _Claim | Outcome:
    now = utcnow()
    with sessions.begin() as session:
        relax_commit(session)
        task, stages = lock_task_with_stages(session, task_id)
        if task is None:
            log.error("stage %s of unknown task %s dropped", stage, task_id)
            return Outcome("missing")
        row = stages.get(stage)
        if row is None:
            return Outcome("missing")
        if row.status in TERMINAL_STAGE:
            return Outcome("ended")
        if task.status == TaskStatus.CANCELLED:
            _end(session, task, row, StageStatus.CANCELLED, now=now)
            return Outcome("cancelled")
        if (
            row.status == StageStatus.RUNNING
            and row.celery_id != celery_id
            and row.lease_until is not None
            and row.lease_until > now
        ):
            return Outcome("held")
        spec = spec_from_dict(task.workflow).stages[stage]
        deps = [stages[d] for d in spec.dependencies]
        if any(d.status not in TERMINAL_STAGE for d in deps):
            return Outcome("wait", settings.dependency_wait_s)
        if any(_blocks(d, task) for d in deps):
            _end(
                session,
                task,
                row,
                StageStatus.SKIPPED,
                now=now,
                error={
                    "code": "E012",
                    "type": "StageSkipped",
                    "message": "skipped: an upstream stage failed",
                },
            )
            settle_if_done(session, task, stages, now=now)
            return Outcome("skipped")
        soft = spec.timeout_s or settings.default_stage_timeout_s
        row.status = StageStatus.RUNNING
        row.attempt += 1
        row.celery_id = celery_id
        row.lease_until = now + timedelta(seconds=soft + settings.stage_hard_limit_grace_s)
        row.started_at = row.started_at or now
        row.updated_at = now
        row.progress = 0.0
        if task.status in (TaskStatus.ACCEPTED, TaskStatus.QUEUED):
            task.status = TaskStatus.IN_PROGRESS
            task.started_at = now
            append_event(session, task, "task.started", now=now)
        append_event(
            session,
            task,
            "stage.started",
            now=now,
            stage=stage,
            payload={"attempt": row.attempt, "agent": row.agent},
        )
        inputs = {d.name: _input_of(d) for d in deps}
        return _Claim(
            spec,
            inputs,
            dict(task.requirements),
            dict(task.context),
            task.description,
            row.attempt,
            soft,
        )


def _blocks(dep: StageRun, task: Task) -> bool:
    """A dependency that ended without output blocks its dependents unless it may fail."""
    if dep.status == StageStatus.COMPLETED:
        return False
    if dep.status == StageStatus.FAILED:
        return spec_from_dict(task.workflow).stages[dep.name].on_failure == "fail_workflow"
    return True


def _input_of(dep: StageRun) -> dict[str, Any]:
    if dep.status == StageStatus.COMPLETED:
        return dict(dep.output or {})
    return {"status": dep.status, "error": dep.error}


def _run_agent(
    sessions: Sessions,
    claim: _Claim,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    settings: Settings,
) -> dict[str, Any]:
    reporter = ProgressReporter(
        sessions,
        task_id=task_id,
        stage=stage,
        celery_id=celery_id,
        every_s=settings.progress_throttle_s,
    )
    ctx = AgentContext(
        task_id=task_id,
        stage=stage,
        task=claim.spec.task,
        inputs=claim.ctx_inputs,
        params=claim.spec.params,
        requirements=claim.requirements,
        context=claim.context,
        description=claim.description,
        attempt=claim.attempt,
        _progress=reporter,
        log=logging.getLogger(f"aia_engine.agents.{claim.spec.agent}"),
        # Named datasets are read here, when the stage runs: the broker carries only ids.
        datasets=partial(records_for_task, sessions, task_id=task_id),
    )
    output = get_agent(claim.spec.agent).run(ctx)
    if not isinstance(output, dict):
        raise EngineError(
            f"agent {claim.spec.agent!r} returned {type(output).__name__}, not a dict"
        )
    try:
        json.dumps(output)
    except (TypeError, ValueError) as exc:
        raise EngineError(
            f"agent {claim.spec.agent!r} returned an output that is not JSON: {exc}"
        ) from exc
    return output


def _record(
    sessions: Sessions,
    claim: _Claim,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    output: dict[str, Any] | None,
    error: dict[str, Any] | None,
    duration: float,
) -> Outcome:
    now = utcnow()
    with sessions.begin() as session:
        relax_commit(session)
        task, stages = lock_task_with_stages(session, task_id)
        if task is None:
            return Outcome("missing")
        row = stages[stage]
        if row.status != StageStatus.RUNNING or row.celery_id != celery_id:
            # Cancelled, or taken over after our lease ran out: our result is not the stage's.
            return Outcome("superseded")
        if error is None:
            _end(
                session,
                task,
                row,
                StageStatus.COMPLETED,
                now=now,
                output=output,
                payload={"duration_s": round(duration, 4), "attempt": row.attempt},
            )
            settle_if_done(session, task, stages, now=now)
            return Outcome("completed")
        if row.attempt < row.max_attempts:
            countdown = claim.spec.retry_backoff * (2 ** (row.attempt - 1))
            row.status = StageStatus.PENDING
            row.error = error
            row.lease_until = None
            row.updated_at = now
            append_event(
                session,
                task,
                "stage.retrying",
                now=now,
                stage=stage,
                payload={"attempt": row.attempt, "retry_in_s": countdown, "error": error},
            )
            return Outcome("retry", countdown)
        _end(
            session,
            task,
            row,
            StageStatus.FAILED,
            now=now,
            error=error,
            payload={"duration_s": round(duration, 4), "attempt": row.attempt, "error": error},
        )
        if claim.spec.on_failure == "fail_workflow":
            skip_unreachable(session, task, stages, stage, now=now)
        settle_if_done(session, task, stages, now=now)
        return Outcome("failed")


def _end(
    session: Session,
    task: Task,
    row: StageRun,
    status: StageStatus,
    *,
    now: datetime,
    output: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    row.status = status
    row.finished_at = row.updated_at = now
    row.lease_until = None
    if status == StageStatus.COMPLETED:
        row.output, row.error, row.progress = output, None, 100.0
    elif error is not None:
        row.error = error
    append_event(session, task, f"stage.{status}", now=now, stage=row.name, payload=payload or {})
