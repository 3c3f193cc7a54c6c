"""Optimization cycles: start one (a real workflow through the task engine), read, list, cancel.

Starting a cycle is ONE transaction: a per-client advisory lock orders concurrent starts, the
client's cycles of the last 24 hours are counted (AIA_BI_CYCLES_PER_DAY, else E073 with
Retry-After), then the task, its stages, its first event, its outbox row and the `bi_cycles`
row are inserted together; the workflow is published after commit like any task (the outbox
relay re-publishes it if the broker was down). An Idempotency-Key repeat answers the first
cycle (a key is one per client across tasks and cycles).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import IntegrityError

from aia_engine.bi.cycle_request import CycleRequest
from aia_engine.bi.cycle_workflow import PLAN_STAGE, TASK_TYPE, cycle_workflow
from aia_engine.bi.task_figures import pin_month
from aia_engine.clock import utcnow
from aia_engine.cursors import decode_cursor, encode_cursor
from aia_engine.db.direct import in_session, sqlalchemy_errors
from aia_engine.db.locks import stage_rows
from aia_engine.db.models import BiCycle, StageRun, StageStatus, Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, CycleNotFound, CycleQuotaExceeded
from aia_engine.publishing import Publisher, PublishGate, publish_now
from aia_engine.settings import Settings
from aia_engine.tasks.catalog import Catalog
from aia_engine.tasks.control import cancel_task
from aia_engine.tasks.estimates import agent_durations, estimate_completion
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasks.queries import iso
from aia_engine.tasks.submit import NewTask, build_spec, insert_tasks

WINDOW = timedelta(hours=24)
_LOCK_CLASS = 0x41494243  # "AIBC": the advisory lock space of cycle starts, keyed per client
STATUS = {
    TaskStatus.ACCEPTED: "initiated",
    TaskStatus.QUEUED: "initiated",
    TaskStatus.IN_PROGRESS: "in_progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}


def optimization_id_of(task_id: str) -> str:
    return "opt_" + task_id.removeprefix("task_")


def links(optimization_id: str, task_id: str) -> dict[str, str]:
    base = f"/business-intelligence/cycles/{optimization_id}"
    return {
        "self": base,
        "cancel": f"{base}/cancel",
        "task": f"/tasks/{task_id}",
        "stream": f"/tasks/{task_id}/stream",
    }


def task_request(cycle: dict[str, Any]) -> TaskRequest:
    """The task of a normalized cycle request with its pinned month (`requirements.cycle`)."""
    return TaskRequest(
        task_type=TASK_TYPE,
        description=f"{cycle['cycle_type']}: {', '.join(cycle['focus_areas'])}",
        requirements={"cycle": cycle},
        workflow=cycle_workflow(cycle),
    )


def start_cycle(
    sessions: Sessions,
    cycle: CycleRequest,
    *,
    settings: Settings,
    publisher: Publisher,
    gate: PublishGate,
    client_id: str,
    task_id: str,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Start `cycle` for `client_id` as task `task_id`: (the answer, whether it was created).
    The reference month of its figures is pinned here (task_figures.pin_month)."""
    asked = cycle.normalized()
    if idempotency_key is not None:
        earlier = _replay(sessions, client_id, idempotency_key, asked)
        if earlier is not None:
            return earlier, False
    # A cheap early answer for a client over its quota, before pinning the month (a scan of
    # its purchases); the check that counts is the one under the lock below.
    try:
        with sessions.begin() as session:
            _check_quota(session, client_id, settings.bi_cycles_per_day, utcnow())
    except CycleQuotaExceeded:
        earlier = (
            None
            if idempotency_key is None
            else _replay(sessions, client_id, idempotency_key, asked)
        )
        if earlier is None:
            raise
        return earlier, False
    normalized = {**asked, "month": pin_month(sessions, client_id)}
    request = task_request(normalized)
    spec = build_spec(request, settings, Catalog(sessions, client_id=client_id), internal=True)
    now = utcnow()
    eta = estimate_completion(spec, agent_durations(sessions, now=now), start=now)
    optimization_id = optimization_id_of(task_id)
    try:
        with sessions.begin() as session:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:k, hashtext(:c))"),
                {"k": _LOCK_CLASS, "c": client_id},
            )
            if idempotency_key is not None:
                # Under the lock: a concurrent repeat of a key whose cycle was the last one the
                # quota allowed gets that cycle (200), not 429.
                earlier = _replay_in(session, client_id, idempotency_key, asked)
                if earlier is not None:
                    return earlier, False
            _check_quota(session, client_id, settings.bi_cycles_per_day, now)
            new = NewTask(task_id, request, spec, client_id, idempotency_key, eta)
            with sqlalchemy_errors():
                (outbox_id,) = insert_tasks(in_session(session), [new], now=now)
            session.add(
                BiCycle(
                    optimization_id=optimization_id,
                    client_id=client_id,
                    task_id=task_id,
                    request=normalized,
                    created_at=now,
                )
            )
    except IntegrityError:
        # The same key used at the same moment by a task submission (keys are per client
        # across tasks and cycles): answer as a repeat, or Conflict.
        if idempotency_key is None:
            raise
        earlier = _replay(sessions, client_id, idempotency_key, asked)
        if earlier is None:
            raise
        return earlier, False
    publish_now(
        sessions,
        publisher,
        gate,
        task_id=task_id,
        outbox_id=outbox_id,
        spec=spec,
        priority=request.priority,
    )
    return _accepted(optimization_id, task_id, eta), True


def _accepted(optimization_id: str, task_id: str, eta: datetime | None) -> dict[str, Any]:
    return {
        "optimization_id": optimization_id,
        "status": "initiated",
        "estimated_completion": iso(eta),
        "optimization_plan": None,
        "task_id": task_id,
        "links": links(optimization_id, task_id),
    }


def _check_quota(session: Any, client_id: str, limit: int, now: datetime) -> None:
    """CycleQuotaExceeded when the client started `limit` cycles in the last 24 hours. Retry-After
    is when enough of them have left the window for one more: with `count` in it, the
    (count - limit + 1)-th oldest (the oldest when count == limit; more when the limit was
    lowered)."""
    times = session.scalars(
        select(BiCycle.created_at)
        .where(BiCycle.client_id == client_id, BiCycle.created_at > now - WINDOW)
        .order_by(BiCycle.created_at)
    ).all()
    if len(times) >= limit:
        frees = times[len(times) - limit]
        wait = max(1, math.ceil((frees + WINDOW - now).total_seconds()))
        raise CycleQuotaExceeded(limit=limit, retry_after_s=wait)


def _replay(
    sessions: Sessions, client_id: str, key: str, asked: dict[str, Any]
) -> dict[str, Any] | None:
    with sessions.begin() as session:
        return _replay_in(session, client_id, key, asked)


def _asked(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored cycle request without what the engine added (the pinned month)."""
    return {k: v for k, v in stored.items() if k != "month"}


def _replay_in(
    session: Any, client_id: str, key: str, asked: dict[str, Any]
) -> dict[str, Any] | None:
    """The first answer to a repeated Idempotency-Key (None: the key is new). The same request
    is the same normalized body; the month pinned for it is not part of what was asked."""
    found = session.execute(
        select(Task, BiCycle)
        .outerjoin(BiCycle, BiCycle.task_id == Task.id)
        .where(Task.client_id == client_id, Task.idempotency_key == key)
    ).one_or_none()
    if found is None:
        return None
    task, cycle = found
    if cycle is None or _asked(cycle.request) != asked:
        raise Conflict(
            f"idempotency key {key!r} was used for a different request",
            field="Idempotency-Key",
            provided_value=key,
            task_id=task.id,
        )
    return _accepted(cycle.optimization_id, task.id, task.estimated_completion)


def _owned(session: Any, optimization_id: str, client_id: str) -> tuple[BiCycle, Task]:
    row = session.execute(
        select(BiCycle, Task)
        .join(Task, Task.id == BiCycle.task_id)
        .where(BiCycle.optimization_id == optimization_id, BiCycle.client_id == client_id)
    ).one_or_none()
    if row is None:
        raise CycleNotFound(optimization_id)
    return row[0], row[1]


def _plan_of(stage: StageRun | None) -> dict[str, Any] | None:
    if stage is None or stage.status != StageStatus.COMPLETED or not stage.output:
        return None
    plan = stage.output.get("optimization_plan")
    return dict(plan) if isinstance(plan, dict) else None


def _summary(cycle: BiCycle, task: Task, plan: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "optimization_id": cycle.optimization_id,
        "status": STATUS.get(TaskStatus(task.status), task.status),
        "task_status": task.status,
        "cycle_type": cycle.request["cycle_type"],
        "focus_areas": cycle.request["focus_areas"],
        "constraints": cycle.request["constraints"],
        "month": cycle.request.get("month"),
        "created_at": iso(cycle.created_at),
        "finished_at": iso(task.finished_at),
        "estimated_completion": iso(task.finished_at or task.estimated_completion),
        "progress": task.progress,
        "optimization_plan": plan,
        "task_id": task.id,
        "links": links(cycle.optimization_id, task.id),
    }


def get_cycle(sessions: Sessions, optimization_id: str, *, client_id: str) -> dict[str, Any]:
    """The cycle's status (its task's), stages, and plan once the plan stage has run."""
    with sessions.begin() as session:
        cycle, task = _owned(session, optimization_id, client_id)
        stages = stage_rows(session, task.id)
    body = _summary(cycle, task, _plan_of(stages.get(PLAN_STAGE)))
    body["stages"] = [
        {
            "name": row.name,
            "agent": row.agent,
            "status": row.status,
            "dependencies": list(row.dependencies),
            "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at),
            "error": row.error,
        }
        for row in stages.values()
    ]
    if task.status == TaskStatus.FAILED:
        body["error"] = task.error
    return body


def list_cycles(
    sessions: Sessions, *, client_id: str, limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """The client's cycles, newest first, `limit` per page; `next_cursor` for the next page."""
    query = (
        select(BiCycle, Task, StageRun)
        .join(Task, Task.id == BiCycle.task_id)
        .outerjoin(StageRun, and_(StageRun.task_id == BiCycle.task_id, StageRun.name == PLAN_STAGE))
        .where(BiCycle.client_id == client_id)
        .order_by(BiCycle.created_at.desc(), BiCycle.optimization_id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        at, oid = decode_cursor(cursor)
        query = query.where(
            or_(
                BiCycle.created_at < at,
                and_(BiCycle.created_at == at, BiCycle.optimization_id < oid),
            )
        )
    with sessions.begin() as session:
        rows = session.execute(query).all()
    page = rows[:limit]
    items = [_summary(c, t, _plan_of(s)) for c, t, s in page]
    last = page[-1][0] if page and len(rows) > limit else None
    return {
        "cycles": items,
        "count": len(items),
        "next_cursor": encode_cursor(last.created_at, last.optimization_id) if last else None,
    }


def cancel_cycle(
    sessions: Sessions, publisher: Publisher, optimization_id: str, *, client_id: str
) -> dict[str, Any]:
    """Cancel the cycle's workflow (the task cancel: pending stages never run)."""
    with sessions.begin() as session:
        cycle, task = _owned(session, optimization_id, client_id)
    result = cancel_task(sessions, publisher, task.id, client_id=client_id)
    return {
        "optimization_id": cycle.optimization_id,
        "status": "cancelled",
        "task_id": task.id,
        "cancelled_stages": result["cancelled_stages"],
    }
