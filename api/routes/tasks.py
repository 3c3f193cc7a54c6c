"""Task endpoints: submit, orchestrate (with dry runs), batch-submit, get, list, cancel, retry."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.errors import InvalidRequest
from aia_engine.tasks.batch import submit_batch
from aia_engine.tasks.control import cancel_task, retry_task
from aia_engine.tasks.dryrun import plan_task
from aia_engine.tasks.models import TaskRequest, checked_key
from aia_engine.tasks.queries import get_task, list_tasks
from aia_engine.tasks.submit import new_task_id, submit_task
from api import schemas
from api.auth import require
from api.body import json_body, parse_model
from api.contract import Reply, header, operation, query
from api.deps import in_thread, quota_for, resources
from api.replies import reply

IDEMPOTENCY = header(
    "Idempotency-Key",
    Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[!-~]+$")],
    "Repeat a POST safely: the same key returns the original response.",
)
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when a repeated Idempotency-Key returned the original task",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
ACCEPTED = (
    "200 with `status: accepted`, as in the guide: the task, its stages and its first event "
    "are committed and it is queued; the status code does not wait for the work. Follow it at "
    "`tracking_url`. A repeated Idempotency-Key answers the original task, with the header "
    "`Idempotent-Replayed: true`. 422 when task_type names no known type (E003, listing them) "
    "or requirements name a dataset that does not exist (naming the field)."
)
SUBMISSION_ERRORS = ("E002", "E003", "E005", "E009", "E013")


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    return checked_key(key, field="Idempotency-Key", issue="invalid header")


async def _submit(request: Request, *, need_workflow: bool) -> Response:
    dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
    task_id = new_task_id()
    # The rate limit and the task's place under the active-task quota: one Redis call. The
    # place is given back below if no new task comes of this request.
    principal = await require(request, "write", reserve=() if dry_run else (task_id,))
    res = resources(request)
    quota = None if dry_run else quota_for(res, principal)
    try:
        body = parse_model(TaskRequest, await json_body(request))
        if need_workflow and body.workflow is None:
            raise InvalidRequest(
                "workflow is required by /tasks/orchestrate; use /tasks/submit for a template task",
                field="workflow",
                issue="field required",
                provided_value=None,
            )
        if dry_run:
            plan = await in_thread(
                plan_task, res.sessions, body, settings=res.settings, client_id=principal.client_id
            )
            return reply(request, plan, model=schemas.DryRunPlan)
        accepted = await in_thread(
            submit_task,
            res.sessions,
            body,
            settings=res.settings,
            publisher=res.publisher,
            gate=res.gate,
            client_id=principal.client_id,
            idempotency_key=idempotency_key(request),
            task_id=task_id,
        )
    except BaseException:
        if quota is not None:
            with contextlib.suppress(Exception):
                await quota.release_async([task_id])
        raise
    if quota is not None and accepted.task_id != task_id:  # an Idempotency-Key repeat
        await quota.release_async([task_id])
    # 200, as the guide's contract and its tests expect: the body's `"status": "accepted"` says
    # the task is durable and queued, not done. A repeated Idempotency-Key answers the same,
    # marked by a header.
    headers = None if accepted.created else {"Idempotent-Replayed": "true"}
    return reply(request, accepted.to_dict(), headers=headers, model=schemas.TaskAccepted)


@operation(
    "Submit task",
    tag="tasks",
    scope="write",
    body=TaskRequest,
    params=[IDEMPOTENCY],
    responses={200: Reply(schemas.TaskAccepted, "Accepted", headers=REPLAYED)},
    errors=SUBMISSION_ERRORS,
    description=ACCEPTED,
)
async def submit(request: Request) -> Response:
    return await _submit(request, need_workflow=False)


@operation(
    "Orchestrate workflow",
    tag="tasks",
    scope="write",
    body=TaskRequest,
    params=[
        IDEMPOTENCY,
        query("dry_run", bool, "Validate and plan without running."),
    ],
    responses={
        200: Reply(
            (schemas.DryRunPlan, schemas.TaskAccepted),
            "Accepted (or, with dry_run, the plan)",
            headers=REPLAYED,
        )
    },
    errors=SUBMISSION_ERRORS,
    description=ACCEPTED,
)
async def orchestrate(request: Request) -> Response:
    return await _submit(request, need_workflow=True)


@operation(
    "Batch submit",
    tag="tasks",
    scope="write",
    body=schemas.BatchRequest,
    params=[IDEMPOTENCY],
    responses={200: schemas.BatchResult},
    description="200 like a single submission, whatever the mix: one request carries many "
    "outcomes, each in `results` (`accepted`, or `rejected` with its error); `created: false` "
    "marks an item whose key had already been used.",
)
async def batch_submit(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    data = await json_body(request)
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not tasks:
        raise InvalidRequest(
            'body must be {"tasks": [ ... ]} with at least one task',
            field="tasks",
            issue="missing or empty",
            provided_value=None if tasks is None else type(tasks).__name__,
        )
    if len(tasks) > res.settings.batch_max_tasks:
        raise InvalidRequest(
            f"a batch holds at most {res.settings.batch_max_tasks} tasks; split it",
            field="tasks",
            issue="too many items",
            provided_value=len(tasks),
        )
    results = await in_thread(
        submit_batch,
        res.sessions,
        tasks,
        settings=res.settings,
        publisher=res.publisher,
        gate=res.gate,
        client_id=principal.client_id,
        idempotency_key=idempotency_key(request),
        quota=quota_for(res, principal),
    )
    accepted = sum(1 for r in results if r["status"] != "rejected")
    # 200 like a single submission (each item's own status is in `results`).
    body = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return reply(request, body)


@operation("Get task", tag="tasks", scope="read", responses={200: schemas.TaskView})
async def get_one(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    view = await in_thread(
        get_task, res.sessions, request.path_params["task_id"], client_id=principal.client_id
    )
    return reply(request, view)


def _when(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date-time",
            field=name,
            issue="invalid date-time",
            provided_value=value,
        ) from exc
    if parsed.tzinfo is None:
        raise InvalidRequest(
            f"{name} needs a time zone (e.g. Z)",
            field=name,
            issue="naive date-time",
            provided_value=value,
        )
    return parsed


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "50")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 200:
        raise InvalidRequest(
            "limit must be an integer from 1 to 200",
            field="limit",
            issue="out of range",
            provided_value=raw,
        )
    return int(raw)


@operation(
    "List tasks",
    tag="tasks",
    scope="read",
    params=[
        query("status", schemas.TaskStatusName),
        query("task_type", str),
        query("created_after", datetime),
        query("created_before", datetime),
        query("updated_after", datetime, "Only tasks changed at or after this time (polling)."),
        query("limit", Annotated[int, Field(ge=1, le=200)]),
        query("cursor", str),
    ],
    responses={200: schemas.TaskList},
)
async def list_all(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    page = await in_thread(
        list_tasks,
        res.sessions,
        client_id=principal.client_id,
        status=request.query_params.get("status"),
        task_type=request.query_params.get("task_type"),
        created_after=_when(request, "created_after"),
        created_before=_when(request, "created_before"),
        updated_after=_when(request, "updated_after"),
        limit=_limit(request),
        cursor=request.query_params.get("cursor"),
    )
    return reply(request, page)


@operation(
    "Cancel task",
    tag="tasks",
    scope="write",
    responses={200: schemas.CancelResult},
    errors=("E009",),
)
async def cancel(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    result = await in_thread(
        cancel_task,
        res.sessions,
        res.publisher,
        request.path_params["task_id"],
        client_id=principal.client_id,
    )
    return reply(request, result)


@operation(
    "Retry task",
    tag="tasks",
    scope="write",
    params=[IDEMPOTENCY],
    responses={
        202: schemas.RetryResult,
        200: Reply(schemas.RetryResult, "Repeated Idempotency-Key: the first answer"),
    },
    errors=("E009", "E013"),
)
async def retry(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    result, started = await in_thread(
        retry_task,
        res.sessions,
        res.publisher,
        res.gate,
        request.path_params["task_id"],
        client_id=principal.client_id,
        idempotency_key=idempotency_key(request),
        quota=quota_for(res, principal),
    )
    return reply(request, result, status=202 if started else 200)


routes = [
    Route("/tasks/submit", submit, methods=["POST"]),
    Route("/tasks/orchestrate", orchestrate, methods=["POST"]),
    Route("/tasks/batch-submit", batch_submit, methods=["POST"]),
    Route("/tasks", list_all, methods=["GET"]),
    Route("/tasks/{task_id}", get_one, methods=["GET"]),
    Route("/tasks/{task_id}/cancel", cancel, methods=["POST"]),
    Route("/tasks/{task_id}/retry", retry, methods=["POST"]),
]
