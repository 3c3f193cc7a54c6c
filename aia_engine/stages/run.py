"""Running one stage: claim it in PostgreSQL, load its inputs, call its agent, store the output.

At-least-once delivery, exactly-once effects: a stage whose row has ended is skipped on
redelivery; a claim carries a lease (the stage's hard time limit), so a duplicate message does
not run a stage another worker holds; the output is written only by the claim that holds the
row, so it is written once. A stage also checks here that its dependencies ended, whatever
the canvas says, so no message can start it early.

Every run ends the stage or hands it on: an output that cannot be stored (not JSON, over
AIA_MAX_STAGE_OUTPUT_BYTES, refused by PostgreSQL) fails it with E020; a delivery that finds
the stage still `running` under its own or an expired claim is a run after one that recorded
no outcome (its process died), counted in `redispatches`, and past AIA_MAX_STAGE_REDISPATCHES
the stage fails as lost (E021). So a poison message cannot loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import get_agent
from aia_engine.bi.task_figures import dashboard_for_task
from aia_engine.clock import utcnow
from aia_engine.datasets.store import open_for_task
from aia_engine.db.locks import lock_task_with_stages
from aia_engine.db.models import TERMINAL_STAGE, StageRun, StageStatus, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import (
    AgentCrashed,
    EngineError,
    StageOutputNotStorable,
    StageSkipped,
    StageTimedOut,
)
from aia_engine.graph import inputs as graph_inputs
from aia_engine.graph.inputs import graph_input
from aia_engine.graph.writing import write_for_task
from aia_engine.redaction import redact_error
from aia_engine.search import inputs as search_inputs
from aia_engine.settings import Settings
from aia_engine.stages.fastpath import claim_in_sql, complete_in_sql
from aia_engine.stages.machine import (
    Claim,
    Completion,
    DependencyView,
    StageView,
    decide_claim,
    decide_completion,
)
from aia_engine.stages.progress import ProgressReporter
from aia_engine.stages.settle import (
    fail_stage,
    lost_error,
    settle_if_done,
    skip_unreachable,
    task_progress,
)
from aia_engine.storable import encode_output, refused_output, refused_value, storable_error
from aia_engine.tasks.events import append_event
from workflows.spec import StageSpec, WorkflowSpec, spec_from_dict, stage_from_dict

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
    "lost",
]


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery of a stage; `retry` and `wait` ask to run again later."""

    kind: OutcomeKind
    countdown: float = 0.0


@dataclass(frozen=True)
class Claimed:
    """A claimed stage: what its agent is run with."""

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
    claim = claim_stage(
        sessions, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
    )
    if isinstance(claim, Outcome):
        return claim
    started = time.monotonic()
    output, error = _run_agent_safely(
        sessions,
        claim,
        task_id=task_id,
        stage=stage,
        celery_id=celery_id,
        settings=settings,
        timeout_errors=timeout_errors,
    )
    return record_result(
        sessions,
        claim,
        task_id=task_id,
        stage=stage,
        celery_id=celery_id,
        output=output,
        error=error,
        duration=time.monotonic() - started,
        settings=settings,
    )


def claim_stage(
    sessions: Sessions, *, task_id: str, stage: str, celery_id: str, settings: Settings
) -> Claimed | Outcome:
    """Claim a delivery of `stage`: the claim to run, or the outcome that ends this delivery.

    With AIA_STAGE_FAST_PATH, SQL decides first (one round trip) and Python decides what SQL
    leaves to it (`fastpath.CLAIMS_LEFT_TO_PYTHON`)."""
    claim: Claimed | Outcome | None = None
    if settings.stage_fast_path:
        claim = _claim_fast(
            sessions, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
    if claim is None:
        claim = _claim(
            sessions, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
    return claim


def record_result(
    sessions: Sessions,
    claim: Claimed,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    output: dict[str, Any] | None,
    error: dict[str, Any] | None,
    duration: float,
    settings: Settings,
) -> Outcome:
    """Hand in a run's result: `output`, or the `error` it ended with."""
    encoded: str | None = None
    if error is None:
        try:
            encoded = encode_output(
                output,
                stage=stage,
                agent=claim.spec.agent,
                max_bytes=settings.max_stage_output_bytes,
            )
        except StageOutputNotStorable as exc:
            output, error = None, exc.to_dict()
            log.warning("stage %s of task %s: %s", stage, task_id, exc.message)
    try:
        if settings.stage_fast_path and encoded is not None:
            fast = complete_in_sql(
                sessions,
                task_id=task_id,
                stage=stage,
                celery_id=celery_id,
                output_json=encoded,
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
    except DBAPIError as exc:
        # PostgreSQL refused a value (the output, or the task's results it completes): the
        # stage fails with E020 instead of staying `running`. Anything else (a lost
        # connection) is raised, and the Celery task retries it.
        refusal = refused_value(exc)
        if refusal is None:
            raise
        log.warning("stage %s of task %s: output refused: %s", stage, task_id, refusal)
        return _record(
            sessions,
            claim,
            task_id=task_id,
            stage=stage,
            celery_id=celery_id,
            output=None,
            error=refused_output(stage, refusal),
            duration=duration,
        )


def _run_agent_safely(
    sessions: Sessions,
    claim: Claimed,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    settings: Settings,
    timeout_errors: tuple[type[BaseException], ...],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(output, None) or (None, error): anything the agent raises becomes the stage's error."""
    try:
        output = _run_agent(
            sessions, claim, task_id=task_id, stage=stage, celery_id=celery_id, settings=settings
        )
        return output, None
    except timeout_errors as exc:
        log.warning("stage %s of task %s timed out: %s", stage, task_id, exc)
        return None, StageTimedOut(
            f"stage {stage!r} exceeded its time limit of {claim.soft_limit:g}s", stage=stage
        ).to_dict()
    except EngineError as exc:
        return None, exc.to_dict()
    except Exception as exc:
        log.exception("agent %s failed in stage %s of task %s", claim.spec.agent, stage, task_id)
        message, details = redact_error(str(exc)[:2000], {})  # an agent's text may hold a URL
        return None, {
            "type": type(exc).__name__,
            "code": AgentCrashed.code,
            "message": message,
            "details": details,
        }


def _claim_fast(
    sessions: Sessions, *, task_id: str, stage: str, celery_id: str, settings: Settings
) -> Claimed | Outcome | None:
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
    return Claimed(
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
) -> Claimed | Outcome:
    now = utcnow()
    with sessions.begin() as session:
        task, stages = lock_task_with_stages(session, task_id)
        row = stages.get(stage)
        spec: WorkflowSpec | None = None
        deps: list[DependencyView] = []
        if task is not None and row is not None and row.status not in TERMINAL_STAGE:
            spec = spec_from_dict(task.workflow)
            deps = [_dependency(spec, stages[d]) for d in spec.stages[stage].dependencies]
        decision = decide_claim(
            None if row is None else stage_view(row),
            deps,
            task_status=None if task is None else task.status,
            claimant=celery_id,
            now=now,
            redispatch_cap=settings.max_stage_redispatches,
        )
        if decision.outcome == Claim.MISSING:
            log.error("stage %s of task %s dropped: no such task or stage", stage, task_id)
            return Outcome("missing")
        if decision.outcome in (Claim.ENDED, Claim.HELD):
            return Outcome(decision.outcome.value)
        assert task is not None and row is not None
        if decision.outcome == Claim.CANCELLED:
            _end(session, task, row, StageStatus.CANCELLED, now=now)
            return Outcome("cancelled")
        if decision.outcome == Claim.LOST:
            error = lost_error(stage, row, settings.max_stage_redispatches)
            fail_stage(session, task, stages, stage, error, now=now)
            log.error("stage %s of task %s lost: %s", stage, task_id, error["message"])
            return Outcome("lost")
        if decision.lost_run:
            # Our own claim (a redelivery after our process died) or an expired one: that run
            # recorded no outcome.
            row.redispatches += 1
        if decision.outcome == Claim.WAIT:
            return Outcome("wait", settings.dependency_wait_s)
        if decision.outcome == Claim.SKIPPED:
            _end(
                session,
                task,
                row,
                StageStatus.SKIPPED,
                now=now,
                stages=stages,
                error={
                    "code": StageSkipped.code,
                    "type": "StageSkipped",
                    "message": "skipped: an upstream stage failed",
                },
            )
            settle_if_done(session, task, stages, now=now)
            return Outcome("skipped")
        assert spec is not None and decision.runs
        stage_spec = spec.stages[stage]
        soft = stage_spec.timeout_s or settings.default_stage_timeout_s
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
        started: dict[str, Any] = {"attempt": row.attempt, "agent": row.agent}
        if decision.lost_run:
            started["lost_runs"] = row.redispatches
        append_event(session, task, "stage.started", now=now, stage=stage, payload=started)
        inputs = {d: _input_of(stages[d]) for d in stage_spec.dependencies}
        return Claimed(
            stage_spec,
            inputs,
            dict(task.requirements),
            dict(task.context),
            task.description,
            row.attempt,
            soft,
        )


def stage_view(row: StageRun) -> StageView:
    """The machine's view of a stage row."""
    return StageView(
        status=row.status,
        celery_id=row.celery_id,
        lease_until=row.lease_until,
        redispatches=row.redispatches,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
    )


def _dependency(spec: WorkflowSpec, dep: StageRun) -> DependencyView:
    return DependencyView(dep.status, may_fail=spec.stages[dep.name].on_failure != "fail_workflow")


def _input_of(dep: StageRun) -> dict[str, Any]:
    if dep.status == StageStatus.COMPLETED:
        return dict(dep.output or {})
    return {"status": dep.status, "error": dep.error}


def _run_agent(
    sessions: Sessions,
    claim: Claimed,
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
    inputs = claim.ctx_inputs
    if graph_inputs.PARAM in claim.spec.params:  # the query runs now, for the task's client
        inputs = {**inputs, graph_inputs.INPUT: graph_input(sessions, task_id, claim.spec.params)}
    if search_inputs.PARAM in claim.spec.params:  # the search runs now, for the task's client
        similar = search_inputs.similar_input(sessions, task_id, claim.spec.params)
        inputs = {**inputs, search_inputs.INPUT: similar}
    ctx = AgentContext(
        task_id=task_id,
        stage=stage,
        task=claim.spec.task,
        inputs=inputs,
        params=claim.spec.params,
        requirements=claim.requirements,
        context=claim.context,
        description=claim.description,
        attempt=claim.attempt,
        _progress=reporter,
        log=logging.getLogger(f"aia_engine.agents.{claim.spec.agent}"),
        # Named datasets are read here, when the stage runs: the broker carries only ids.
        datasets=partial(
            open_for_task, sessions, task_id=task_id, max_rows=settings.dataset_agent_max_rows
        ),
        graph_write=partial(write_for_task, sessions, task_id=task_id),
        business_figures=partial(dashboard_for_task, sessions, settings, task_id=task_id),
    )
    return get_agent(claim.spec.agent).run(ctx)


def _record(
    sessions: Sessions,
    claim: Claimed,
    *,
    task_id: str,
    stage: str,
    celery_id: str,
    output: dict[str, Any] | None,
    error: dict[str, Any] | None,
    duration: float,
) -> Outcome:
    now = utcnow()
    if error is not None:
        error = storable_error(error)
    with sessions.begin() as session:
        task, stages = lock_task_with_stages(session, task_id)
        row = stages.get(stage)
        decision = decide_completion(
            None if row is None else stage_view(row),
            task_exists=task is not None,
            claimant=celery_id,
            succeeded=error is None,
        )
        if decision in (Completion.MISSING, Completion.SUPERSEDED):
            # Superseded: cancelled, or taken over after our lease ran out; our result is not
            # the stage's.
            return Outcome(decision.value)
        assert task is not None and row is not None
        if decision == Completion.COMPLETED:
            _end(
                session,
                task,
                row,
                StageStatus.COMPLETED,
                now=now,
                stages=stages,
                output=output,
                payload={"duration_s": round(duration, 4), "attempt": row.attempt},
            )
            settle_if_done(session, task, stages, now=now)
            return Outcome("completed")
        if decision == Completion.RETRY:
            assert error is not None
            countdown = claim.spec.retry_backoff * (2 ** (row.attempt - 1))
            row.status = StageStatus.PENDING
            row.error = error
            row.lease_until = None
            row.updated_at = now
            task.progress = task_progress(stages)  # its partial progress no longer counts
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
            stages=stages,
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
    stages: Mapping[str, StageRun] | None = None,
) -> None:
    """End a stage. With the task's `stages` (holding `row`), the task's progress counts the
    ended stage before the event records it; without, the task's progress stays as it is (a
    stage of a cancelled task)."""
    row.status = status
    row.finished_at = row.updated_at = now
    row.lease_until = None
    if status == StageStatus.COMPLETED:
        row.output, row.error, row.progress = output, None, 100.0
    elif error is not None:
        row.error = error
    if stages is not None:
        task.progress = task_progress(stages)
    append_event(session, task, f"stage.{status}", now=now, stage=row.name, payload=payload or {})
