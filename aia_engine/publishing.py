"""Getting accepted work to the broker: publish after commit, and the outbox relay.

`Publisher` is implemented by `workers.dispatch.CeleryPublisher`; the core never imports Celery.
A submission commits its outbox row first, then tries to publish once with a short timeout. A
failure is never the caller's problem: the row stays unpublished and the relay (celery beat)
publishes it later. After a failure, direct publishing pauses for `publish_backoff_s` so a
broker outage costs submissions nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aia_engine.db.models import TERMINAL_STAGE, TERMINAL_TASK, OutboxMessage, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.settings import Settings
from aia_engine.tasks.events import append_event, lock_task, relax_commit, stage_rows
from workflows.spec import WorkflowSpec, spec_from_dict

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, task_id: str, spec: WorkflowSpec, *, priority: str) -> None:
        """Send the compiled canvas of `spec`; raise if the broker did not take it."""

    def revoke(self, celery_ids: list[str]) -> None:
        """Stop running Celery tasks (best effort)."""


@dataclass
class PublishGate:
    """Skips direct publishing for a while after the broker failed (a tiny circuit breaker)."""

    backoff_s: float
    _closed_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_open(self) -> bool:
        return time.monotonic() >= self._closed_until

    def failed(self) -> None:
        with self._lock:
            self._closed_until = time.monotonic() + self.backoff_s

    def succeeded(self) -> None:
        with self._lock:
            self._closed_until = 0.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def publish_now(
    sessions: Sessions,
    publisher: Publisher,
    gate: PublishGate,
    *,
    task_id: str,
    outbox_id: int,
    spec: WorkflowSpec,
    priority: str,
) -> bool:
    """Try once to publish a committed task; True when the broker took it."""
    if not gate.is_open():
        return False
    try:
        publisher.publish(task_id, spec, priority=priority)
    except Exception as exc:
        gate.failed()
        log.warning("publish of task %s failed, the outbox relay will retry: %s", task_id, exc)
        return False
    gate.succeeded()
    with sessions.begin() as session:
        mark_published(session, task_id=task_id, outbox_id=outbox_id, now=utcnow())
    return True


def mark_published(session: Session, *, task_id: str, outbox_id: int, now: datetime) -> None:
    relax_commit(session)
    session.execute(
        update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(published_at=now)
    )
    task = lock_task(session, task_id)
    if task is None:
        return
    task.dispatched_at = now
    task.dispatch_count += 1
    if task.status == TaskStatus.ACCEPTED:
        task.status = TaskStatus.QUEUED
        append_event(session, task, "task.queued", now=now)


def residual_spec(session: Session, task: Task) -> WorkflowSpec | None:
    """The part of a task's workflow still to run (None when every stage has ended)."""
    stages = stage_rows(session, task.id)
    open_names = [name for name, row in stages.items() if row.status not in TERMINAL_STAGE]
    if not open_names:
        return None
    return spec_from_dict(task.workflow).subset(open_names)


@dataclass
class RelayReport:
    published: int = 0
    failed: int = 0
    settled: int = 0


def relay_outbox(
    sessions: Sessions,
    publisher: Publisher,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 200,
) -> RelayReport:
    """Publish outbox rows left unpublished for `outbox_stale_s` (a beat task runs this)."""
    now = now or utcnow()
    report = RelayReport()
    cutoff = now - timedelta(seconds=settings.outbox_stale_s)
    with sessions.begin() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None), OutboxMessage.created_at <= cutoff)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            task = session.get(Task, row.task_id)
            spec = (
                residual_spec(session, task) if task and task.status not in TERMINAL_TASK else None
            )
            if task is None or spec is None:
                row.published_at = now
                continue
            try:
                publisher.publish(task.id, spec, priority=task.priority)
            except Exception as exc:
                row.attempts += 1
                row.last_error = str(exc)[:500]
                report.failed += 1
                log.warning("relay could not publish task %s: %s", task.id, exc)
                break  # the broker is down: the rest would fail the same way
            mark_published(session, task_id=task.id, outbox_id=row.id, now=now)
            report.published += 1
    if report.published or report.failed:
        log.info("outbox relay: %d published, %d failed", report.published, report.failed)
    return report
