"""Changing running work: cancel a whole workflow, or retry it from its failure."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from aia_engine.clock import utcnow
from aia_engine.db.locks import stage_rows
from aia_engine.db.models import (
    TERMINAL_STAGE,
    OutboxMessage,
    StageRun,
    StageStatus,
    Task,
    TaskStatus,
)
from aia_engine.db.session import Sessions
from aia_engine.errors import TaskNotFound, TaskStateConflict
from aia_engine.limits.quota import ClientQuota
from aia_engine.publishing import Publisher, PublishGate, publish_now
from aia_engine.tasks.events import append_event
from workflows.spec import spec_from_dict

log = logging.getLogger(__name__)

CANCELLABLE = [TaskStatus.ACCEPTED, TaskStatus.QUEUED, TaskStatus.IN_PROGRESS]
RETRYABLE = [TaskStatus.FAILED, TaskStatus.CANCELLED]


def stages_to_cancel(stages: Mapping[str, StageRun]) -> tuple[list[str], list[str]]:
    """What a cancel ends: the stages not yet ended, and the Celery ids of the running ones
    (to revoke once the cancel is committed)."""
    ending = [name for name, row in stages.items() if row.status not in TERMINAL_STAGE]
    running = [
        row.celery_id
        for row in stages.values()
        if row.status == StageStatus.RUNNING and row.celery_id
    ]
    return ending, running


def stages_to_retry(stages: Mapping[str, StageRun]) -> tuple[list[str], list[str], float]:
    """What a retry re-runs (every stage that did not complete), what it reuses, and the
    task's progress once the re-run stages start again from nothing."""
    rerun = [name for name, row in stages.items() if row.status != StageStatus.COMPLETED]
    reused = [name for name in stages if name not in rerun]
    progress = round(100.0 * len(reused) / len(stages), 1) if stages else 0.0
    return rerun, reused, progress


def reset_stage(row: StageRun, now: datetime) -> None:
    """A stage as it was before its first run: no attempts, output, error or claim."""
    row.status = StageStatus.PENDING
    row.attempt = 0
    row.error = row.output = row.partial_results = None
    row.started_at = row.finished_at = row.lease_until = None
    row.celery_id = None
    row.progress = 0.0
    row.updated_at = now


def _locked_task(session: Any, task_id: str, client_id: str) -> Task:
    task = session.scalars(
        select(Task).where(Task.id == task_id, Task.client_id == client_id).with_for_update()
    ).one_or_none()
    if task is None:
        raise TaskNotFound(task_id)
    return task  # type: ignore[no-any-return]


def cancel_task(
    sessions: Sessions, publisher: Publisher, task_id: str, *, client_id: str = "local"
) -> dict[str, Any]:
    """Stop the whole workflow: pending stages never run, running ones are revoked."""
    now = utcnow()
    with sessions.begin() as session:
        task = _locked_task(session, task_id, client_id)
        if task.status == TaskStatus.CANCELLED:
            return {"task_id": task_id, "status": task.status, "cancelled_stages": []}
        if task.status not in CANCELLABLE:
            raise TaskStateConflict(task_id, task.status, "cancel", CANCELLABLE)
        stages = stage_rows(session, task_id)
        cancelled, running = stages_to_cancel(stages)
        for name in cancelled:
            row = stages[name]
            row.status = StageStatus.CANCELLED
            row.finished_at = row.updated_at = now
            row.lease_until = None
            append_event(session, task, "stage.cancelled", now=now, stage=name)
        task.status = TaskStatus.CANCELLED
        task.finished_at = now
        append_event(session, task, "task.cancelled", now=now, payload={"stages": cancelled})
    if running:
        try:
            publisher.revoke([cid for cid in running if cid])
        except Exception as exc:  # the stages see the cancellation in PostgreSQL anyway
            log.warning("revoking running stages of %s failed: %s", task_id, exc)
    return {"task_id": task_id, "status": TaskStatus.CANCELLED, "cancelled_stages": cancelled}


def retry_task(
    sessions: Sessions,
    publisher: Publisher,
    gate: PublishGate,
    task_id: str,
    *,
    client_id: str = "local",
    idempotency_key: str | None = None,
    quota: ClientQuota | None = None,
) -> tuple[dict[str, Any], bool]:
    """Re-run only the failed, skipped and cancelled stages, reusing completed outputs.

    Returns the answer and whether this call started the retry: a repeated `idempotency_key`
    answers what the first call answered and starts nothing.
    """
    now = utcnow()
    with sessions.begin() as session:
        task = _locked_task(session, task_id, client_id)
        if idempotency_key is not None:
            earlier = session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.task_id == task_id,
                    OutboxMessage.kind == "retry",
                    OutboxMessage.payload["idempotency_key"].astext == idempotency_key,
                )
            ).first()
            if earlier is not None:
                return dict(earlier.payload["response"]), False
        if task.status not in RETRYABLE:
            raise TaskStateConflict(task_id, task.status, "retry", RETRYABLE)
        if quota is not None:  # active again: it counts against the cap again
            quota.reserve([task_id])
        stages = stage_rows(session, task_id)
        rerun, reused, progress = stages_to_retry(stages)
        for name in rerun:
            reset_stage(stages[name], now)
        task.status = TaskStatus.ACCEPTED
        task.error = task.results = None
        task.finished_at = None
        task.progress = progress
        append_event(session, task, "task.retried", now=now, payload={"stages": rerun})
        response = {
            "task_id": task_id,
            "status": str(TaskStatus.ACCEPTED),
            "retried_stages": rerun,
            "reused_stages": reused,
            "tracking_url": f"/tasks/{task_id}",
        }
        outbox = OutboxMessage(
            task_id=task_id,
            kind="retry",
            attempts=0,
            created_at=now,
            payload={"stages": rerun, "idempotency_key": idempotency_key, "response": response},
        )
        session.add(outbox)
        session.flush()
        outbox_id, priority = outbox.id, task.priority
        spec = spec_from_dict(task.workflow).subset(rerun)
    publish_now(
        sessions,
        publisher,
        gate,
        task_id=task_id,
        outbox_id=outbox_id,
        spec=spec,
        priority=priority,
    )
    return response, True
