"""Task types: list and read them (read scope); operators create and delete their own (admin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine import tasktypes
from api import schemas
from api.auth import require
from api.body import json_body, parse_model
from api.contract import Reply, operation
from api.deps import in_thread, resources
from api.replies import reply


@operation(
    "List task types",
    tag="task types",
    scope="read",
    responses={200: schemas.TaskTypeList},
    description="What POST /tasks/submit's task_type may name: the built-in templates (builtin: "
    "true) and the types operators defined (POST /task-types or `aia-engine task-types create`). "
    "A submission naming any other type is refused (422, E003) with the list of known ones.",
)
async def list_all(request: Request) -> Response:
    await require(request, "read")
    res = resources(request)
    found = await in_thread(tasktypes.list_task_types, res.sessions)
    return reply(request, {"task_types": found})


@operation(
    "Create task type",
    tag="task types",
    scope="admin",
    body=tasktypes.TaskTypeCreate,
    responses={201: schemas.TaskTypeView},
    errors=("E002", "E005", "E009"),
    description="Operators only (admin scope). The workflow is validated like a submitted one "
    "(422: unknown agent, dependency, cycle, limits, a dataset no one can use); 409 for a "
    "built-in or existing name.",
)
async def create(request: Request) -> Response:
    await require(request, "admin")
    res = resources(request)
    body = parse_model(tasktypes.TaskTypeCreate, await json_body(request))
    made = await in_thread(tasktypes.create_task_type, res.sessions, body, settings=res.settings)
    return reply(request, made, status=201)


@operation(
    "Get task type",
    tag="task types",
    method="GET",
    scope="read",
    responses={200: schemas.TaskTypeView},
)
@operation(
    "Delete task type",
    tag="task types",
    method="DELETE",
    scope="admin",
    responses={204: Reply(description="Deleted")},
    errors=("E009",),
    description="Operators only (admin scope). Built-in types cannot be deleted (409). Tasks "
    "already accepted keep the workflow they were accepted with.",
)
async def one(request: Request) -> Response:
    name = request.path_params["name"]
    res = resources(request)
    if request.method == "DELETE":
        await require(request, "admin")
        await in_thread(tasktypes.delete_task_type, res.sessions, name)
        return Response(status_code=204)
    await require(request, "read")
    return reply(request, await in_thread(tasktypes.get_task_type, res.sessions, name))


routes = [
    Route("/task-types", list_all, methods=["GET"]),
    Route("/task-types", create, methods=["POST"]),
    Route("/task-types/{name}", one, methods=["GET", "DELETE"]),
]
