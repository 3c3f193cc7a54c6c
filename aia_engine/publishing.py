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
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from aia_engine.clock import utcnow
from aia_engine.db.locks import relax_commit, stage_rows
from aia_engine.db.models import TERMINAL_STAGE, TERMINAL_TASK, OutboxMessage, Task
from aia_engine.db.session import Sessions, autocommit
from aia_engine.settings import Settings
from workflows.spec import WorkflowSpec, spec_from_dict

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, task_id: str, spec: WorkflowSpec, *, priority: str) -> None:
        """Send the compiled canvas of `spec`; raise if the broker did not take it."""

    def publish_many(self, items: list[tuple[str, WorkflowSpec, str]]) -> None:
        """Send several workflows (task_id, spec, priority) at once; raise if any was refused."""

    def revoke(self, celery_ids: list[str]) -> None:
        """Stop running Celery tasks (best effort)."""


@dataclass
class PublishGate:
    """Skips direct publishing for a while after the broker failed (a tiny circuit breaker).

    With `pipeline`, committed work is handed to a background publisher that sends it in
    Redis pipelines and records "published" in batches, off the request path.
    """

    backoff_s: float
    pipeline: PublishPipeline | None = None
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


Pending = tuple[str, int, WorkflowSpec, str]  # task_id, outbox_id, spec, priority


class PublishPipeline:
    """Publishes committed tasks from a background thread, many per Redis round trip.

    Submissions return as soon as their transaction commits; this thread sends what they
    committed every `interval_s` (one pipeline per batch) and records it published in one
    transaction. Anything it could not send (broker down, process stopped) is still an
    unpublished outbox row, which the relay publishes: nothing accepted depends on it.
    """

    def __init__(
        self,
        sessions: Sessions,
        publisher: Publisher,
        gate: PublishGate,
        *,
        interval_s: float = 0.001,
        max_pending: int = 20_000,
        batch: int = 500,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.gate = gate
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.batch = batch
        self._pending: list[Pending] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, item: Pending) -> bool:
        """Queue one committed task; False when the queue is full (the relay will send it)."""
        with self._lock:
            if len(self._pending) >= self.max_pending:
                return False
            self._pending.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aia-publish", daemon=True)
                self._thread.start()
        self._wake.set()
        return True

    def flush(self) -> int:
        """Send everything queued now; returns how many were published."""
        sent = 0
        while True:
            with self._lock:
                items, self._pending = self._pending[: self.batch], self._pending[self.batch :]
            if not items:
                return sent
            if not self.gate.is_open():
                return sent  # left unpublished; the relay sends them when the broker is back
            try:
                self.publisher.publish_many([(t, spec, pri) for t, _, spec, pri in items])
            except Exception as exc:
                self.gate.failed()
                log.warning(
                    "publishing %d tasks failed; the outbox relay will retry: %s", len(items), exc
                )
                return sent
            self.gate.succeeded()
            sent += len(items)
            try:
                with autocommit(self.sessions) as conn:
                    mark_published_many(conn, [(t, o) for t, o, _, _ in items], now=utcnow())
            except Exception as exc:  # the relay republishes these later; stages are idempotent
                log.warning("recording %d published tasks failed: %s", len(items), exc)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(1.0)
            self._wake.clear()
            time.sleep(self.interval_s)  # let concurrent submissions join this batch
            self.flush()


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
    """Try once to publish a committed task; True when the broker took it (or, with a
    pipeline, when the pipeline took it)."""
    if gate.pipeline is not None:
        return gate.pipeline.add((task_id, outbox_id, spec, priority))
    if not gate.is_open():
        return False
    try:
        publisher.publish(task_id, spec, priority=priority)
    except Exception as exc:
        gate.failed()
        log.warning("publish of task %s failed, the outbox relay will retry: %s", task_id, exc)
        return False
    gate.succeeded()
    # One statement in autocommit: one round trip, and the task row is locked only while it
    # runs (a stage claiming the task right after the publish does not wait for a transaction).
    with autocommit(sessions) as conn:
        mark_published_many(conn, [(task_id, outbox_id)], now=utcnow())
    return True


_MARK_PUBLISHED = text("""
WITH sent AS (
    UPDATE outbox SET published_at = :now WHERE id = ANY(:outbox_ids)
), old AS (
    SELECT id, status FROM tasks WHERE id = ANY(:task_ids) ORDER BY id FOR UPDATE
), upd AS (
    UPDATE tasks AS t SET
        dispatched_at = :now,
        dispatch_count = t.dispatch_count + 1,
        status = CASE WHEN old.status = 'accepted' THEN 'queued' ELSE t.status END,
        event_seq = t.event_seq + CASE WHEN old.status = 'accepted' THEN 1 ELSE 0 END,
        updated_at = CASE WHEN old.status = 'accepted' THEN :now ELSE t.updated_at END
    FROM old WHERE t.id = old.id
    RETURNING t.id, t.event_seq, t.progress, old.status AS was
)
INSERT INTO task_events (task_id, seq, type, stage, payload, created_at, progress)
SELECT id, event_seq, 'task.queued', NULL, '{}'::jsonb, :now, progress FROM upd WHERE was = 'accepted'
""")


def mark_published_many(
    session: Session | Connection, marks: list[tuple[str, int]], *, now: datetime
) -> None:
    """Outbox rows published; their tasks `queued` (with a `task.queued` event) if still accepted.

    One statement. Task rows are locked in id order, so concurrent markers never deadlock each
    other. In a session the commit is relaxed (a lost mark only makes the relay publish again).
    """
    if isinstance(session, Session):
        relax_commit(session)
    session.execute(
        _MARK_PUBLISHED,
        {
            "outbox_ids": [o for _, o in marks],
            "task_ids": sorted({t for t, _ in marks}),
            "now": now,
        },
    )


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
        due: list[tuple[OutboxMessage, Task, WorkflowSpec]] = []
        for row in rows:
            task = session.get(Task, row.task_id)
            spec = (
                residual_spec(session, task) if task and task.status not in TERMINAL_TASK else None
            )
            if task is None or spec is None:
                row.published_at = now  # nothing left to run
            else:
                due.append((row, task, spec))
        if due:
            try:
                # One pipeline for the whole batch: after an outage there may be thousands.
                publisher.publish_many([(task.id, spec, task.priority) for _, task, spec in due])
            except Exception as exc:
                for row, _, _ in due:
                    row.attempts += 1
                    row.last_error = str(exc)[:500]
                report.failed = len(due)
                log.warning("relay could not publish %d tasks: %s", len(due), exc)
            else:
                mark_published_many(session, [(task.id, row.id) for row, task, _ in due], now=now)
                report.published = len(due)
    if report.published or report.failed:
        log.info("outbox relay: %d published, %d failed", report.published, report.failed)
    return report
