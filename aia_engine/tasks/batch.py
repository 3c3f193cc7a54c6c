"""Batch submission: every valid item accepted in one transaction, invalid ones reported by index.

With an Idempotency-Key K, item i is keyed `K:i`, so a script that retries a batch gets the
same tasks back and no duplicates. An item may instead carry its own `idempotency_key` (what
`aia-engine batch submit` sends: one per line of its file), which does not depend on how items
were grouped into batches.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aia_engine.clock import utcnow
from aia_engine.db.direct import in_session, sqlalchemy_errors
from aia_engine.db.models import Task
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, EngineError, InvalidRequest
from aia_engine.limits.quota import ClientQuota
from aia_engine.publishing import Publisher, PublishGate, mark_published_many
from aia_engine.settings import Settings
from aia_engine.tasks.catalog import Catalog
from aia_engine.tasks.estimates import agent_durations, estimate_completion
from aia_engine.tasks.models import TaskRequest, checked_key
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
    valid: list[Valid] = []
    seen_keys: set[str] = set()
    catalog = Catalog(sessions, client_id=client_id)
    for index, raw in enumerate(items):
        try:
            raw, own_key = _own_key(raw, index)
            item_key = own_key or (f"{idempotency_key}:{index}" if idempotency_key else None)
            if item_key is not None and item_key in seen_keys:
                raise InvalidRequest(
                    f"tasks[{index}].idempotency_key repeats an earlier item's key",
                    field=f"tasks[{index}].idempotency_key",
                    issue="duplicate key in one batch",
                    provided_value=item_key,
                )
            request = validate_model(TaskRequest, raw, where=f"tasks[{index}]")
            valid.append((index, request, build_spec(request, settings, catalog), item_key))
            if item_key is not None:
                seen_keys.add(item_key)
        except EngineError as exc:
            results[index] = rejected(index, exc)
    accept = partial(
        _accept,
        sessions,
        valid,
        settings=settings,
        client_id=client_id,
        results=results,
        quota=quota,
    )
    try:
        fresh = accept()
    except IntegrityError:  # a concurrent retry of the same batch won the race: read its tasks
        fresh = accept()
    _publish(sessions, publisher, gate, fresh)
    return [results[i] for i in range(len(items))]


Valid = tuple[int, TaskRequest, WorkflowSpec, str | None]


def _own_key(raw: Any, index: int) -> tuple[Any, str | None]:
    """Take an item's own `idempotency_key` out of it (checked like the header)."""
    if not isinstance(raw, dict) or "idempotency_key" not in raw:
        return raw, None
    raw = dict(raw)
    key = raw.pop("idempotency_key")
    return raw, checked_key(key, field=f"tasks[{index}].idempotency_key", issue="invalid key")


def _accept(
    sessions: Sessions,
    valid: list[Valid],
    *,
    settings: Settings,
    client_id: str,
    results: dict[int, dict[str, Any]],
    quota: ClientQuota | None,
) -> list[tuple[str, int, WorkflowSpec, str]]:
    now = utcnow()
    with sessions.begin() as session:
        existing: dict[str, Task] = {}
        keys = [k for *_, k in valid if k is not None]
        if keys:
            existing = {
                t.idempotency_key or "": t
                for t in session.scalars(
                    select(Task).where(Task.client_id == client_id, Task.idempotency_key.in_(keys))
                )
            }
        durations = agent_durations(session, now=now)
        new: list[NewTask] = []
        for index, request, spec, item_key in valid:
            if item_key is not None and item_key in existing:
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
            if new:
                with sqlalchemy_errors():
                    outbox_ids = insert_tasks(in_session(session), new, now=now)
            else:
                outbox_ids = []
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
