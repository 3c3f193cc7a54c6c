"""Task types: list and read them (read scope); operators create and delete their own (admin)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aia_engine import tasktypes
from api.auth import require
from api.body import json_body, parse_model
from api.deps import in_thread, resources


async def list_all(request: Request) -> JSONResponse:
    await require(request, "read")
    res = resources(request)
    found = await in_thread(tasktypes.list_task_types, res.sessions)
    return JSONResponse({"task_types": found})


async def create(request: Request) -> JSONResponse:
    await require(request, "admin")
    res = resources(request)
    body = parse_model(tasktypes.TaskTypeCreate, await json_body(request))
    made = await in_thread(tasktypes.create_task_type, res.sessions, body, settings=res.settings)
    return JSONResponse(made, status_code=201)


async def one(request: Request) -> Response:
    name = request.path_params["name"]
    res = resources(request)
    if request.method == "DELETE":
        await require(request, "admin")
        await in_thread(tasktypes.delete_task_type, res.sessions, name)
        return Response(status_code=204)
    await require(request, "read")
    return JSONResponse(await in_thread(tasktypes.get_task_type, res.sessions, name))


routes = [
    Route("/task-types", list_all, methods=["GET"]),
    Route("/task-types", create, methods=["POST"]),
    Route("/task-types/{name}", one, methods=["GET", "DELETE"]),
]
