"""Batch submission: every valid item accepted in one transaction, invalid ones reported by index.

With an Idempotency-Key K, item i is keyed `K:i`, so a script that retries a batch gets the
same tasks back and no duplicates.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, EngineError
from aia_engine.estimates import agent_durations, estimate_completion
from aia_engine.limits.quota import ClientQuota
from aia_engine.publishing import Publisher, PublishGate, mark_published_many, utcnow
from aia_engine.settings import Settings
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasks.submit import (
    Accepted,
    NewTask,
    build_spec,
    insert_tasks,
    new_task_id,
    request_hash,
)
from aia_engine.validation import validate_model
from workflows.spec import WorkflowSpec

log = logging.getLogger(__name__)


def rejected(index: int, exc: EngineError) -> dict[str, Any]:
    return {"index": index, "status": "rejected", "error": {**exc.to_dict()}}


def accepted_item(index: int, acc: Accepted) -> dict[str, Any]:
    return {"index": index, **acc.to_dict(), "created": acc.created}


def submit_batch(
    sessions: Sessions,
    items: list[Any],
    *,
    settings: Settings,
    publisher: Publisher,
    gate: PublishGate,
    client_id: str,
    idempotency_key: str | None = None,
    quota: ClientQuota | None = None,
) -> list[dict[str, Any]]:
    """Accept every valid item (all of them count against `quota`, or none is accepted)."""
    results: dict[int, dict[str, Any]] = {}
    valid: list[tuple[int, TaskRequest, WorkflowSpec]] = []
    for index, raw in enumerate(items):
        try:
            request = validate_model(TaskRequest, raw, where=f"tasks[{index}]")
            valid.append((index, request, build_spec(request, settings)))
        except EngineError as exc:
            results[index] = rejected(index, exc)
    accept = partial(
        _accept,
        sessions,
        valid,
        settings=settings,
        client_id=client_id,
        key=idempotency_key,
        results=results,
        quota=quota,
    )
    try:
        fresh = accept()
    except IntegrityError:  # a concurrent retry of the same batch won the race: read its tasks
        fresh = accept()
    _publish(sessions, publisher, gate, fresh)
    return [results[i] for i in range(len(items))]


def _accept(
    sessions: Sessions,
    valid: list[tuple[int, TaskRequest, WorkflowSpec]],
    *,
    settings: Settings,
    client_id: str,
    key: str | None,
    results: dict[int, dict[str, Any]],
    quota: ClientQuota | None,
) -> list[tuple[str, int, WorkflowSpec, str]]:
    now = utcnow()
    with sessions.begin() as session:
        existing: dict[str, Task] = {}
        if key is not None:
            keys = [f"{key}:{i}" for i, _, _ in valid]
            existing = {
                t.idempotency_key or "": t
                for t in session.scalars(
                    select(Task).where(Task.client_id == client_id, Task.idempotency_key.in_(keys))
                )
            }
        durations = agent_durations(session, now=now)
        new: list[NewTask] = []
        for index, request, spec in valid:
            item_key = f"{key}:{index}" if key is not None else None
            if item_key in existing:
                results[index] = _repeat(index, existing[item_key], request, item_key)
                continue
            eta = estimate_completion(spec, durations, start=now)
            new.append(NewTask(new_task_id(), request, spec, client_id, item_key, eta))
            results[index] = accepted_item(
                index, Accepted(new[-1].task_id, "accepted", eta, spec.agents, False)
            )
        ids = [t.task_id for t in new]
        if quota is not None:
            quota.reserve(ids)
        try:
            outbox_ids = insert_tasks(session, new, now=now) if new else []
            session.flush()
        except BaseException:
            if quota is not None:
                quota.release(ids)
            raise
        fresh: list[tuple[str, int, WorkflowSpec, str]] = [
            (t.task_id, o, t.spec, t.request.priority) for t, o in zip(new, outbox_ids, strict=True)
        ]
    return fresh


def _repeat(index: int, task: Task, request: TaskRequest, key: str) -> dict[str, Any]:
    if task.request_hash != request_hash(request):
        return rejected(
            index,
            Conflict(
                f"idempotency key {key!r} was used for a different request",
                field="Idempotency-Key",
                provided_value=key,
                task_id=task.id,
            ),
        )
    acc = Accepted(
        task.id,
        task.status,
        task.estimated_completion,
        list(task.assigned_agents),
        True,
        created=False,
    )
    return accepted_item(index, acc)


def _publish(
    sessions: Sessions,
    publisher: Publisher,
    gate: PublishGate,
    fresh: list[tuple[str, int, WorkflowSpec, str]],
) -> None:
    """Publish after commit, in one pipeline; whatever the broker refuses is left to the relay."""
    if gate.pipeline is not None:
        for task_id, outbox_id, spec, priority in fresh:
            gate.pipeline.add((task_id, outbox_id, spec, priority))
        return
    if not fresh or not gate.is_open():
        return
    try:
        publisher.publish_many([(task_id, spec, priority) for task_id, _, spec, priority in fresh])
    except Exception as exc:
        gate.failed()
        log.warning(
            "publishing a batch of %d tasks failed; the outbox relay will retry: %s",
            len(fresh),
            exc,
        )
        return
    gate.succeeded()
    with sessions.begin() as session:
        mark_published_many(session, [(t, o) for t, o, _, _ in fresh], now=utcnow())
