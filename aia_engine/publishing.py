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

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from aia_engine.db.models import TERMINAL_STAGE, TERMINAL_TASK, OutboxMessage, Task
from aia_engine.db.session import Sessions
from aia_engine.settings import Settings
from aia_engine.tasks.events import relax_commit, stage_rows
from workflows.spec import WorkflowSpec, spec_from_dict

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, task_id: str, spec: WorkflowSpec, *, priority: str) -> None:
        """Send the compiled canvas of `spec`; raise if the broker did not take it."""

    def revoke(self, celery_ids: list[str]) -> None:
        """Stop running Celery tasks (best effort)."""


@dataclass
class PublishGate:
    """Skips direct publishing for a while after the broker failed (a tiny circuit breaker).

    With `marks`, the "published" bookkeeping of successful publishes is batched by a
    background thread instead of costing each submission its own transaction.
    """

    backoff_s: float
    marks: PublishedMarks | None = None
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


class PublishedMarks:
    """Records "published" for many tasks in one transaction, every `interval_s` seconds.

    Losing a batch (a crash before the flush) only means the relay publishes those tasks
    again after `outbox_stale_s`, which stages tolerate (they are idempotent).
    """

    def __init__(self, sessions: Sessions, *, interval_s: float = 0.02) -> None:
        self.sessions = sessions
        self.interval_s = interval_s
        self._pending: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, task_id: str, outbox_id: int) -> None:
        with self._lock:
            self._pending.append((task_id, outbox_id))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aia-published-marks", daemon=True
                )
                self._thread.start()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                with self.sessions.begin() as session:
                    mark_published_many(session, batch, now=utcnow())
            except Exception as exc:  # the relay republishes these later; nothing is lost
                log.warning("recording %d published tasks failed: %s", len(batch), exc)
        return len(batch)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval_s)
            self.flush()


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
    if gate.marks is not None:
        gate.marks.add(task_id, outbox_id)
        return True
    with sessions.begin() as session:
        mark_published(session, task_id=task_id, outbox_id=outbox_id, now=utcnow())
    return True


def mark_published(session: Session, *, task_id: str, outbox_id: int, now: datetime) -> None:
    mark_published_many(session, [(task_id, outbox_id)], now=now)


_MARK_TASKS = text("""
WITH old AS (
    SELECT id, status FROM tasks WHERE id = ANY(:task_ids) ORDER BY id FOR UPDATE
), upd AS (
    UPDATE tasks AS t SET
        dispatched_at = :now,
        dispatch_count = t.dispatch_count + 1,
        status = CASE WHEN old.status = 'accepted' THEN 'queued' ELSE t.status END,
        event_seq = t.event_seq + CASE WHEN old.status = 'accepted' THEN 1 ELSE 0 END,
        updated_at = CASE WHEN old.status = 'accepted' THEN :now ELSE t.updated_at END
    FROM old WHERE t.id = old.id
    RETURNING t.id, t.event_seq, old.status AS was
)
INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
SELECT id, event_seq, 'task.queued', NULL, '{}'::jsonb, :now FROM upd WHERE was = 'accepted'
""")


def mark_published_many(session: Session, marks: list[tuple[str, int]], *, now: datetime) -> None:
    """Outbox rows published; their tasks `queued` (with a `task.queued` event) if still accepted.

    Task rows are locked in id order, so concurrent markers never deadlock each other.
    """
    relax_commit(session)
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_([o for _, o in marks]))
        .values(published_at=now)
    )
    session.execute(_MARK_TASKS, {"task_ids": sorted({t for t, _ in marks}), "now": now})


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
