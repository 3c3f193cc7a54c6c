"""Submitting work: validate, then ONE transaction for the task, its stages, its first event and
its outbox row; publish only after commit (DESIGN.md §2.1)."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aia_engine.agents.registry import UnknownAgent, known_agents
from aia_engine.db.models import OutboxMessage, StageRun, StageStatus, Task, TaskEvent, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict
from aia_engine.estimates import agent_durations, estimate_completion
from aia_engine.publishing import Publisher, PublishGate, publish_now, utcnow
from aia_engine.settings import Settings
from aia_engine.tasks.models import TaskRequest
from workflows.spec import Limits, WorkflowSpec, parse_workflow
from workflows.templates import template_workflow


@dataclass(frozen=True)
class Accepted:
    """The guide's submit response."""

    task_id: str
    status: str
    estimated_completion: datetime | None
    assigned_agents: list[str]
    published: bool
    created: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": "accepted",
            "estimated_completion": _iso(self.estimated_completion),
            "assigned_agents": self.assigned_agents,
            "tracking_url": f"/tasks/{self.task_id}",
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def request_hash(request: TaskRequest) -> str:
    """A stable digest of what was asked, to tell a repeated request from a different one."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_task_id() -> str:
    return f"task_{secrets.token_hex(8)}"


def build_spec(request: TaskRequest, settings: Settings) -> WorkflowSpec:
    """The validated workflow of a request: its explicit stages or its task type's template."""
    agents = known_agents()
    for name in request.agents_required or []:
        if name not in agents:
            raise UnknownAgent(name)
    limits = Limits(
        max_stages=settings.max_stages,
        max_retries=settings.max_stage_retries,
        max_timeout_s=settings.max_stage_timeout_s,
    )
    if request.workflow is None:
        return _template_spec(request.task_type, limits, tuple(agents))
    return parse_workflow(request.workflow, known_agents=agents, limits=limits)


@lru_cache(maxsize=64)
def _template_spec(task_type: str, limits: Limits, agents: tuple[str, ...]) -> WorkflowSpec:
    """Templates never change at run time: validate each once per process."""
    return parse_workflow(template_workflow(task_type), known_agents=agents, limits=limits)


def submit_task(
    sessions: Sessions,
    request: TaskRequest,
    *,
    settings: Settings,
    publisher: Publisher,
    gate: PublishGate,
    client_id: str = "local",
    idempotency_key: str | None = None,
) -> Accepted:
    """Accept a task durably and hand it to the broker; never fails because the broker is down."""
    spec = build_spec(request, settings)
    now = utcnow()
    task_id = new_task_id()
    try:
        with sessions.begin() as session:
            eta = estimate_completion(spec, agent_durations(session, now=now), start=now)
            new = NewTask(task_id, request, spec, client_id, idempotency_key, eta)
            (outbox_id,) = insert_tasks(session, [new], now=now)
    except IntegrityError:
        if idempotency_key is None:
            raise
        return _existing(
            sessions, client_id=client_id, idempotency_key=idempotency_key, request=request
        )
    published = publish_now(
        sessions,
        publisher,
        gate,
        task_id=task_id,
        outbox_id=outbox_id,
        spec=spec,
        priority=request.priority,
    )
    return Accepted(task_id, TaskStatus.ACCEPTED, eta, spec.agents, published)


@dataclass(frozen=True)
class NewTask:
    task_id: str
    request: TaskRequest
    spec: WorkflowSpec
    client_id: str
    idempotency_key: str | None
    eta: datetime


def insert_tasks(session: Session, tasks: list[NewTask], *, now: datetime) -> list[int]:
    """Insert tasks with their stages, first events and outbox rows: one statement per table,
    whatever the number of tasks. Returns the outbox ids in the order of `tasks`."""
    session.execute(
        insert(Task),
        [
            {
                "id": t.task_id,
                "client_id": t.client_id,
                "task_type": t.request.task_type,
                "description": t.request.description,
                "priority": t.request.priority,
                "requirements": t.request.requirements,
                "context": t.request.context,
                "workflow": t.spec.to_dict(),
                "assigned_agents": t.spec.agents,
                "status": TaskStatus.ACCEPTED,
                "progress": 0.0,
                "partial_results": {},
                "idempotency_key": t.idempotency_key,
                "request_hash": request_hash(t.request),
                "event_seq": 1,
                "dispatch_count": 0,
                "created_at": now,
                "updated_at": now,
                "estimated_completion": t.eta,
            }
            for t in tasks
        ],
    )
    session.execute(
        insert(StageRun),
        [
            {
                "task_id": t.task_id,
                "name": name,
                "agent": stage.agent,
                "position": position,
                "dependencies": list(stage.dependencies),
                "status": StageStatus.PENDING,
                "attempt": 0,
                "max_attempts": stage.retries + 1,
                "progress": 0.0,
                "updated_at": now,
            }
            for t in tasks
            for position, (name, stage) in enumerate(t.spec.stages.items())
        ],
    )
    session.execute(
        insert(TaskEvent),
        [
            {
                "task_id": t.task_id,
                "seq": 1,
                "type": "task.accepted",
                "created_at": now,
                "payload": {"task_type": t.request.task_type, "stages": list(t.spec.stages)},
            }
            for t in tasks
        ],
    )
    ids = session.scalars(
        insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True),
        [
            {
                "task_id": t.task_id,
                "kind": "dispatch",
                "payload": {},
                "attempts": 0,
                "created_at": now,
            }
            for t in tasks
        ],
    ).all()
    return list(ids)


def _existing(
    sessions: Sessions, *, client_id: str, idempotency_key: str, request: TaskRequest
) -> Accepted:
    with sessions.begin() as session:
        task = session.scalars(
            select(Task).where(Task.client_id == client_id, Task.idempotency_key == idempotency_key)
        ).one()
        if task.request_hash != request_hash(request):
            raise Conflict(
                f"idempotency key {idempotency_key!r} was used for a different request",
                field="Idempotency-Key",
                provided_value=idempotency_key,
                task_id=task.id,
            )
        return Accepted(
            task.id,
            task.status,
            task.estimated_completion,
            list(task.assigned_agents),
            published=True,
            created=False,
        )
