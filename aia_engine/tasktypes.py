"""Operator-defined task types: a name bound to a workflow, beside the built-in templates.

Built-in templates (`workflows/templates/`) come first and cannot be shadowed or deleted. A
task type's workflow is validated exactly like a submitted one when it is created (unknown
agents, cycles, limits, datasets its stages name), and again when a task uses it; a task keeps
the workflow it was accepted with, so deleting a type never changes a task already accepted.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from aia_engine.agents.params import check_stage_params
from aia_engine.agents.registry import known_agents, refuse_internal
from aia_engine.clock import utcnow
from aia_engine.datasets.names import check_data_names, named_datasets
from aia_engine.db.models import TaskTypeRow
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, InvalidRequest, NotFound
from aia_engine.settings import Settings
from workflows.spec import Limits, WorkflowSpec, parse_workflow
from workflows.templates import all_templates

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)


class TaskTypeCreate(BaseModel):
    """The body of POST /task-types (and what `aia-engine task-types create` sends)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    workflow: dict[str, Any] | list[Any]
    """Stages, as in the body of POST /tasks/orchestrate."""


class TaskTypeNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"task type {name[:200]!r} not found", name=name[:200])


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_stages=settings.max_stages,
        max_retries=settings.max_stage_retries,
        max_timeout_s=settings.max_stage_timeout_s,
    )


def validate_workflow(raw: Any, settings: Settings) -> WorkflowSpec:
    """`raw` parsed and validated as any submitted workflow is (raises `InvalidWorkflow`)."""
    spec = parse_workflow(raw, known_agents=known_agents(), limits=limits_of(settings))
    refuse_internal(spec)  # the cycle's agents run only in cycles (and their daily quota)
    check_stage_params(spec)
    return spec


def create_task_type(
    sessions: Sessions, body: TaskTypeCreate, *, settings: Settings
) -> dict[str, Any]:
    """Store an operator task type; 409 for a built-in or existing name, 422 for a bad workflow
    or a stage naming a dataset that no one can use (shared or sample)."""
    if body.name in all_templates():
        raise Conflict(
            f"{body.name!r} is a built-in task type; built-in templates cannot be redefined, "
            "choose another name",
            name=body.name,
        )
    spec = validate_workflow(body.workflow, settings)
    # Shared datasets and samples only: a type is for every client.
    check_data_names(sessions, named_datasets({}, spec), None, {})
    row = TaskTypeRow(
        name=body.name,
        description=body.description,
        workflow=_ordered(body.workflow),
        created_at=utcnow(),
    )
    try:
        with sessions.begin() as session:
            session.add(row)
            session.flush()
            return _view(row.name, row.description, body.workflow, spec, row.created_at)
    except IntegrityError as exc:
        raise Conflict(
            f"task type {body.name!r} already exists; delete it first to redefine it",
            name=body.name,
        ) from exc


def find_task_type(sessions: Sessions, name: str) -> dict[str, Any] | None:
    """The stored operator task type `name` (its raw workflow), or None."""
    if not _NAME.fullmatch(name):  # no such row can exist; and a NUL would not reach PostgreSQL
        return None
    with sessions.begin() as session:
        row = session.get(TaskTypeRow, name)
        if row is None:
            return None
        return {
            "name": row.name,
            "description": row.description,
            "workflow": _mapping(row.workflow),
        }


def operator_names(sessions: Sessions) -> list[str]:
    with sessions.begin() as session:
        return list(session.scalars(select(TaskTypeRow.name).order_by(TaskTypeRow.name)))


def list_task_types(sessions: Sessions) -> list[dict[str, Any]]:
    """Built-in templates, then operator-defined types, each by name."""
    found = [
        _view(name, str(t.get("description", "")), t["workflow"], None, None, builtin=True)
        for name, t in sorted(all_templates().items())
    ]
    with sessions.begin() as session:
        rows = session.scalars(select(TaskTypeRow).order_by(TaskTypeRow.name)).all()
        found += [
            _view(r.name, r.description, _mapping(r.workflow), None, r.created_at) for r in rows
        ]
    return found


def get_task_type(sessions: Sessions, name: str) -> dict[str, Any]:
    template = all_templates().get(name)
    if template is not None:
        return _view(
            name, str(template.get("description", "")), template["workflow"], None, None, True
        )
    if not _NAME.fullmatch(name):
        raise TaskTypeNotFound(name)
    with sessions.begin() as session:
        row = session.get(TaskTypeRow, name)
        if row is None:
            raise TaskTypeNotFound(name)
        return _view(row.name, row.description, _mapping(row.workflow), None, row.created_at)


def delete_task_type(sessions: Sessions, name: str) -> None:
    if name in all_templates():
        raise Conflict(f"{name!r} is a built-in task type; it cannot be deleted", name=name)
    if not _NAME.fullmatch(name):
        raise TaskTypeNotFound(name)
    with sessions.begin() as session:
        row = session.get(TaskTypeRow, name)
        if row is None:
            raise TaskTypeNotFound(name)
        session.delete(row)


def _view(
    name: str,
    description: str,
    workflow: Any,
    spec: WorkflowSpec | None,
    created_at: Any,
    builtin: bool = False,
) -> dict[str, Any]:
    agents = spec.agents if spec is not None else _agents(workflow)
    return {
        "name": name,
        "description": description,
        "builtin": builtin,
        "assigned_agents": agents,
        "workflow": workflow,
        "created_at": created_at.isoformat().replace("+00:00", "Z") if created_at else None,
    }


def _agents(workflow: Any) -> list[str]:
    try:
        return parse_workflow(workflow).agents
    except InvalidRequest:  # stored before a limit was lowered: still listed, refused on use
        return []


def _ordered(workflow: dict[str, Any] | list[Any]) -> list[Any]:
    """Stages as a list (`[{"name": ..., ...}]`): a JSON array keeps the stages' order in
    PostgreSQL, where jsonb does not keep an object's key order."""
    if isinstance(workflow, list):
        return workflow
    return [{"name": name, **stage} for name, stage in workflow.items()]


def _mapping(stored: Any) -> Any:
    """The stored stage list as the orchestrate body's object, in stage order."""
    if not isinstance(stored, list):
        return stored
    return {s["name"]: {k: v for k, v in s.items() if k != "name"} for s in stored}
