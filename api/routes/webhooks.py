"""Webhook endpoints: register, list, get, update, delete, rotate the secret."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aia_engine.webhooks import registry
from api.auth import require
from api.body import parse_model, read_json
from api.deps import in_thread, resources


async def _body(request: Request) -> Any:
    res = resources(request)
    return await read_json(
        request, limit=res.settings.max_body_bytes, max_depth=res.settings.max_json_depth
    )


async def register(request: Request) -> JSONResponse:
    principal = await require(request, "write")
    res = resources(request)
    body = parse_model(registry.WebhookCreate, await _body(request))
    created = await in_thread(
        registry.register,
        res.sessions,
        body,
        client_id=principal.client_id,
        settings=res.settings,
        resolve=res.resolve,
    )
    return JSONResponse(created, status_code=201)


async def list_all(request: Request) -> JSONResponse:
    principal = await require(request, "read")
    return JSONResponse(
        await in_thread(
            registry.list_webhooks, resources(request).sessions, client_id=principal.client_id
        )
    )


async def one(request: Request) -> Response:
    webhook_id = request.path_params["webhook_id"]
    res = resources(request)
    if request.method == "GET":
        principal = await require(request, "read")
        return JSONResponse(
            await in_thread(
                registry.get_webhook, res.sessions, webhook_id, client_id=principal.client_id
            )
        )
    principal = await require(request, "write")
    if request.method == "DELETE":
        await in_thread(
            registry.delete_webhook, res.sessions, webhook_id, client_id=principal.client_id
        )
        return Response(status_code=204)
    body = parse_model(registry.WebhookUpdate, await _body(request))
    return JSONResponse(
        await in_thread(
            registry.update_webhook,
            res.sessions,
            webhook_id,
            body,
            client_id=principal.client_id,
            settings=res.settings,
            resolve=res.resolve,
        )
    )


async def rotate(request: Request) -> JSONResponse:
    principal = await require(request, "write")
    res = resources(request)
    return JSONResponse(
        await in_thread(
            registry.rotate_secret,
            res.sessions,
            request.path_params["webhook_id"],
            client_id=principal.client_id,
            settings=res.settings,
        )
    )


routes = [
    Route("/webhooks/register", register, methods=["POST"]),
    Route("/webhooks", list_all, methods=["GET"]),
    Route("/webhooks/{webhook_id}", one, methods=["GET", "PATCH", "DELETE"]),
    Route("/webhooks/{webhook_id}/rotate-secret", rotate, methods=["POST"]),
]
