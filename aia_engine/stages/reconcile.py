"""The stuck-workflow reconciler: finds work a lost message left behind and sends it again.

A workflow is stuck when a message vanished (Redis flushed or restarted without persistence, a
chord counter expired, a worker died holding a stage). PostgreSQL still knows every stage, so:
  * every stage ended but the task did not -> settle it here;
  * a running stage whose lease expired -> back to pending (its worker is gone), counted in
    the stage's `redispatches`; once that count has reached AIA_MAX_STAGE_REDISPATCHES, the
    stage fails as lost (E021) instead, so a stage that kills or hangs every worker that runs
    it cannot loop;
  * a pending stage whose dependencies all ended more than `stuck_after_s` ago (or, for a first
    stage, whose task was dispatched that long ago) and still has not started -> re-dispatch
    the residual workflow (every stage not yet ended).
Re-dispatching is safe: completed stages are never in it, and a stage held by a live worker
answers a duplicate message with "held".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from aia_engine.clock import utcnow
from aia_engine.db.locks import lock_task, stage_rows
from aia_engine.db.models import TERMINAL_STAGE, StageRun, StageStatus, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.publishing import Publisher
from aia_engine.settings import Settings
from aia_engine.stages.settle import fail_stage, lost_error, settle_if_done
from aia_engine.tasks.events import append_event
from workflows.spec import spec_from_dict

log = logging.getLogger(__name__)

ACTIVE = [TaskStatus.QUEUED, TaskStatus.IN_PROGRESS]


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: list[str] = field(default_factory=list)
    redispatched: dict[str, list[str]] = field(default_factory=dict)
    expired_leases: dict[str, list[str]] = field(default_factory=dict)
    lost: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"checked {self.checked} active task(s): settled {len(self.settled)}, "
            f"re-dispatched {len(self.redispatched)}, expired leases in "
            f"{len(self.expired_leases)}, lost stages in {len(self.lost)}, "
            f"publish failures {len(self.failed)}"
        )


def reconcile(
    sessions: Sessions,
    publisher: Publisher,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 500,
) -> ReconcileReport:
    now = now or utcnow()
    quiet_since = now - timedelta(seconds=settings.stuck_after_s)
    report = ReconcileReport()
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Task.id)
                .where(Task.status.in_(ACTIVE), Task.updated_at < quiet_since)
                .order_by(Task.updated_at)
                .limit(limit)
            )
        )
    for task_id in ids:
        report.checked += 1
        try:
            _reconcile_one(
                sessions,
                publisher,
                task_id,
                now=now,
                quiet_since=quiet_since,
                max_redispatches=settings.max_stage_redispatches,
                report=report,
            )
        except Exception as exc:
            report.failed.append(task_id)
            log.warning("reconciling task %s failed: %s", task_id, exc)
            if len(report.failed) >= 3:
                break  # the broker is likely down; the next run tries again
    if (
        report.settled
        or report.redispatched
        or report.expired_leases
        or report.lost
        or report.failed
    ):
        log.info("reconciler: %s", report.summary())
    return report


def _reconcile_one(
    sessions: Sessions,
    publisher: Publisher,
    task_id: str,
    *,
    now: datetime,
    quiet_since: datetime,
    max_redispatches: int,
    report: ReconcileReport,
) -> None:
    with sessions.begin() as session:
        task = lock_task(session, task_id, skip_locked=True)
        if task is None or task.status not in ACTIVE:
            return
        stages = stage_rows(session, task_id)
        if settle_if_done(session, task, stages, now=now):
            report.settled.append(task_id)
            return
        expired = [
            n
            for n, r in stages.items()
            if r.status == StageStatus.RUNNING and r.lease_until is not None and r.lease_until < now
        ]
        lost = [n for n in expired if stages[n].redispatches >= max_redispatches]
        for name in lost:
            error = lost_error(name, stages[name], max_redispatches)
            fail_stage(session, task, stages, name, error, now=now)
            log.error("stage %s of task %s lost: %s", name, task_id, error["message"])
        if lost:
            report.lost[task_id] = lost
            if task.status not in ACTIVE:
                return  # that settled the task
        expired = [n for n in expired if n not in lost]
        for name in expired:
            row = stages[name]
            row.status, row.lease_until, row.updated_at = StageStatus.PENDING, None, now
            row.redispatches += 1
            append_event(
                session,
                task,
                "stage.lease_expired",
                now=now,
                stage=name,
                payload={"celery_id": row.celery_id, "redispatches": row.redispatches},
            )
        if expired:
            report.expired_leases[task_id] = expired
        stuck = _stuck_ready(stages, task, quiet_since)
        if not stuck and not expired:
            return
        open_names = [n for n, r in stages.items() if r.status not in TERMINAL_STAGE]
        spec = spec_from_dict(task.workflow).subset(open_names)
        # Publish inside the transaction: if the broker refuses, nothing is recorded and the
        # next run tries again.
        publisher.publish(task_id, spec, priority=task.priority)
        task.dispatched_at = now
        task.dispatch_count += 1
        append_event(
            session,
            task,
            "task.redispatched",
            now=now,
            payload={"stages": open_names, "stuck": stuck, "expired": expired},
        )
        report.redispatched[task_id] = open_names


def _stuck_ready(stages: dict[str, StageRun], task: Task, quiet_since: datetime) -> list[str]:
    if task.dispatched_at is not None and task.dispatched_at > quiet_since:
        return []
    stuck = []
    for name, row in stages.items():
        if row.status != StageStatus.PENDING:
            continue
        deps = [stages[d] for d in row.dependencies]
        if any(d.status not in TERMINAL_STAGE for d in deps):
            continue
        ready_at = max((d.finished_at for d in deps if d.finished_at), default=task.dispatched_at)
        if ready_at is None or ready_at < quiet_since:
            stuck.append(name)
    return stuck
