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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aia_engine.agents.params import check_stage_params
from aia_engine.agents.registry import known_agents, refuse_internal
from aia_engine.clock import utcnow
from aia_engine.db.direct import Psycopg, direct
from aia_engine.db.models import Task, TaskStatus
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, UnknownAgent
from aia_engine.limits.quota import ClientQuota
from aia_engine.publishing import Publisher, PublishGate, publish_now
from aia_engine.settings import Settings
from aia_engine.tasks.catalog import Catalog
from aia_engine.tasks.estimates import agent_durations, estimate_completion
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasktypes import limits_of
from workflows.spec import Limits, WorkflowSpec, parse_workflow
from workflows.templates import all_templates, template_workflow


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


def build_spec(
    request: TaskRequest, settings: Settings, catalog: Catalog, *, internal: bool = False
) -> WorkflowSpec:
    """The validated workflow of a request: its explicit stages, its task type's built-in
    template, or the operator-defined type of that name; every dataset it names must exist.
    Internal agents (the optimization cycle's) are refused unless `internal` (the engine's own
    submission of a workflow it built)."""
    agents = known_agents()
    for name in request.agents_required or []:
        if name not in agents:
            raise UnknownAgent(name, agents)
    limits = limits_of(settings)
    where = "workflow"
    if request.workflow is not None:
        spec = parse_workflow(request.workflow, known_agents=agents, limits=limits)
    elif request.task_type in all_templates():
        spec = _template_spec(request.task_type, limits, tuple(agents))
    else:
        raw = catalog.operator_workflow(request.task_type)
        spec = parse_workflow(raw, known_agents=agents, limits=limits)
        where = "task_type"
    if not internal:
        refuse_internal(spec, field=where, agents_required=request.agents_required or ())
    check_stage_params(spec)
    catalog.check_data_names(request.requirements, spec)
    return spec


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
    quota: ClientQuota | None = None,
    task_id: str | None = None,
) -> Accepted:
    """Accept a task durably and hand it to the broker; never fails because the broker is down.
    With `quota`, the task must fit the client's cap of active tasks (`QuotaExceeded`); a
    caller that reserved the place itself passes the reserved `task_id` and no `quota`."""
    spec = build_spec(request, settings, Catalog(sessions, client_id=client_id))
    now = utcnow()
    task_id = task_id or new_task_id()
    if quota is not None:
        quota.reserve([task_id])
    try:
        eta = estimate_completion(spec, agent_durations(sessions, now=now), start=now)
        new = NewTask(task_id, request, spec, client_id, idempotency_key, eta)
        # One statement, atomic by itself: in autocommit it is one round trip, and durable
        # (synchronous commit) before "accepted" is answered.
        with direct(sessions) as conn:
            (outbox_id,) = insert_tasks(conn, [new], now=now)
    except BaseException as exc:
        if quota is not None:  # no new task: give its place back
            quota.release([task_id])
        if idempotency_key is None or not isinstance(exc, IntegrityError):
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


_INSERT_ACCEPTED = """
WITH t AS (
    INSERT INTO tasks (id, client_id, task_type, description, priority, requirements, context, workflow,
                       assigned_agents, status, progress, partial_results, idempotency_key, request_hash,
                       event_seq, dispatch_count, created_at, updated_at, estimated_completion)
    SELECT id, client_id, task_type, description, priority, requirements, context, workflow,
           assigned_agents, 'accepted', 0, '{}'::jsonb, idempotency_key, request_hash, 1, 0, %(now)s, %(now)s, eta
    FROM jsonb_to_recordset(CAST(%(tasks)s AS jsonb)) AS x(
        id text, client_id text, task_type text, description text, priority text, requirements jsonb,
        context jsonb, workflow jsonb, assigned_agents jsonb, idempotency_key text, request_hash text,
        eta timestamptz)
), s AS (
    INSERT INTO stage_runs (task_id, name, agent, position, dependencies, status, attempt, max_attempts,
                            progress, updated_at)
    SELECT task_id, name, agent, position, dependencies, 'pending', 0, max_attempts, 0, %(now)s
    FROM jsonb_to_recordset(CAST(%(stages)s AS jsonb)) AS x(
        task_id text, name text, agent text, position int, dependencies jsonb, max_attempts int)
), e AS (
    INSERT INTO task_events (task_id, seq, type, payload, created_at, progress)
    SELECT id, 1, 'task.accepted', payload, %(now)s, 0
    FROM jsonb_to_recordset(CAST(%(tasks)s AS jsonb)) AS x(id text, payload jsonb)
)
INSERT INTO outbox (task_id, kind, payload, attempts, created_at)
SELECT id, 'dispatch', '{}'::jsonb, 0, %(now)s FROM jsonb_to_recordset(CAST(%(tasks)s AS jsonb)) AS x(id text)
RETURNING task_id, id
"""


def insert_tasks(conn: Psycopg, tasks: list[NewTask], *, now: datetime) -> list[int]:
    """Insert tasks with their stages, first events and outbox rows in ONE statement (one round
    trip, whatever the number of tasks), on psycopg directly (`aia_engine.db.direct`: in
    autocommit, or `in_session`). Returns the outbox ids in the order of `tasks`."""
    rows = [
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
            "idempotency_key": t.idempotency_key,
            # Only a keyed request can be repeated, and only a repeat compares digests.
            "request_hash": request_hash(t.request) if t.idempotency_key else None,
            "eta": t.eta.isoformat(),
            "payload": {"task_type": t.request.task_type, "stages": list(t.spec.stages)},
        }
        for t in tasks
    ]
    stages = [
        {
            "task_id": t.task_id,
            "name": name,
            "agent": stage.agent,
            "position": position,
            "dependencies": list(stage.dependencies),
            "max_attempts": stage.retries + 1,
        }
        for t in tasks
        for position, (name, stage) in enumerate(t.spec.stages.items())
    ]
    params = {"tasks": json.dumps(rows), "stages": json.dumps(stages), "now": now}
    found: dict[str, int] = dict(conn.execute(_INSERT_ACCEPTED, params).fetchall())
    return [int(found[t.task_id]) for t in tasks]


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
