"""Webhook endpoints: register, list, get, update, delete, rotate the secret; the delivery log,
redelivery and the test ping."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.clock import utcnow
from aia_engine.errors import InvalidRequest
from aia_engine.webhooks import log as delivery_log
from aia_engine.webhooks import registry
from aia_engine.webhooks.delivery import attempt_delivery
from api import schemas
from api.auth import require
from api.body import json_body, parse_model
from api.contract import Reply, operation, query
from api.deps import Resources, in_thread, resources
from api.replies import reply

DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


@operation(
    "Register webhook",
    tag="webhooks",
    scope="write",
    body=registry.WebhookCreate,
    responses={201: schemas.WebhookPublic},
    errors=("E007",),
)
async def register(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    body = parse_model(registry.WebhookCreate, await json_body(request))
    created = await in_thread(
        registry.register,
        res.sessions,
        body,
        client_id=principal.client_id,
        settings=res.settings,
        resolve=res.resolve,
    )
    return reply(request, created, status=201)


@operation("List webhooks", tag="webhooks", scope="read", responses={200: schemas.WebhookList})
async def list_all(request: Request) -> Response:
    principal = await require(request, "read")
    return reply(
        request,
        await in_thread(
            registry.list_webhooks, resources(request).sessions, client_id=principal.client_id
        ),
    )


@operation(
    "Get webhook",
    tag="webhooks",
    method="GET",
    scope="read",
    responses={200: schemas.WebhookPublic},
)
@operation(
    "Update webhook",
    tag="webhooks",
    method="PATCH",
    scope="write",
    body=registry.WebhookUpdate,
    responses={200: schemas.WebhookPublic},
    errors=("E007",),
)
@operation(
    "Delete webhook",
    tag="webhooks",
    method="DELETE",
    scope="write",
    responses={204: Reply(description="Deleted")},
)
async def one(request: Request) -> Response:
    webhook_id = request.path_params["webhook_id"]
    res = resources(request)
    if request.method == "GET":
        principal = await require(request, "read")
        return reply(
            request,
            await in_thread(
                registry.get_webhook, res.sessions, webhook_id, client_id=principal.client_id
            ),
        )
    principal = await require(request, "write")
    if request.method == "DELETE":
        await in_thread(
            registry.delete_webhook, res.sessions, webhook_id, client_id=principal.client_id
        )
        return Response(status_code=204)
    body = parse_model(registry.WebhookUpdate, await json_body(request))
    return reply(
        request,
        await in_thread(
            registry.update_webhook,
            res.sessions,
            webhook_id,
            body,
            client_id=principal.client_id,
            settings=res.settings,
            resolve=res.resolve,
        ),
    )


@operation(
    "Rotate webhook secret", tag="webhooks", scope="write", responses={200: schemas.WebhookPublic}
)
async def rotate(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    return reply(
        request,
        await in_thread(
            registry.rotate_secret,
            res.sessions,
            request.path_params["webhook_id"],
            client_id=principal.client_id,
            settings=res.settings,
        ),
    )


def _page_limit(request: Request) -> int:
    raw = request.query_params.get("limit", "50")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= delivery_log.MAX_PAGE:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {delivery_log.MAX_PAGE}",
            field="limit",
            provided_value=raw[:50],
        )
    return int(raw)


@operation(
    "List webhook deliveries",
    tag="webhooks",
    scope="read",
    params=[
        query("limit", Annotated[int, Field(ge=1, le=delivery_log.MAX_PAGE)]),
        query("cursor", str),
        query("status", Literal["pending", "delivered", "failed", "cancelled"]),
    ],
    responses={200: schemas.DeliveryList},
)
async def deliveries(request: Request) -> Response:
    principal = await require(request, "read")
    status = request.query_params.get("status")
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidRequest(
            f"status must be one of {', '.join(DELIVERY_STATUSES)}",
            field="status",
            provided_value=status[:50],
        )
    return reply(
        request,
        await in_thread(
            delivery_log.list_deliveries,
            resources(request).sessions,
            request.path_params["webhook_id"],
            client_id=principal.client_id,
            limit=_page_limit(request),
            before=request.query_params.get("cursor"),
            status=status,
        ),
    )


@operation(
    "Get webhook delivery",
    tag="webhooks",
    scope="read",
    responses={200: schemas.WebhookDeliveryView},
)
async def one_delivery(request: Request) -> Response:
    principal = await require(request, "read")
    return reply(
        request,
        await in_thread(
            delivery_log.get_delivery,
            resources(request).sessions,
            request.path_params["delivery_id"],
            client_id=principal.client_id,
        ),
    )


@operation(
    "Redeliver webhook delivery",
    tag="webhooks",
    scope="write",
    responses={202: schemas.WebhookDeliveryView},
    errors=("E009",),
)
async def redeliver(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    delivery_id = await in_thread(
        delivery_log.redeliver,
        res.sessions,
        request.path_params["delivery_id"],
        client_id=principal.client_id,
        now=utcnow(),
    )
    await in_thread(res.send_deliveries, [delivery_id])
    shown = await in_thread(
        delivery_log.get_delivery, res.sessions, delivery_id, client_id=principal.client_id
    )
    return reply(request, shown, status=202)


def _ping(res: Resources, webhook_id: str, client_id: str) -> dict[str, Any]:
    delivery_id = delivery_log.create_ping(
        res.sessions, webhook_id, client_id=client_id, now=utcnow()
    )
    attempt_delivery(
        res.sessions,
        delivery_id,
        res.settings,
        http=res.webhook_http,
        resolve=res.resolve,
        once=True,
    )
    return delivery_log.get_delivery(res.sessions, delivery_id, client_id=client_id)


@operation(
    "Test webhook",
    tag="webhooks",
    scope="write",
    responses={200: schemas.WebhookDeliveryView},
    errors=("E009",),
)
async def test_ping(request: Request) -> Response:
    """Send a signed `webhook.test` event now and answer with the attempt's outcome."""
    principal = await require(request, "write")
    res = resources(request)
    shown = await in_thread(_ping, res, request.path_params["webhook_id"], principal.client_id)
    return reply(request, shown)


routes = [
    Route("/webhooks/register", register, methods=["POST"]),
    Route("/webhooks", list_all, methods=["GET"]),
    Route("/webhooks/{webhook_id}", one, methods=["GET", "PATCH", "DELETE"]),
    Route("/webhooks/{webhook_id}/rotate-secret", rotate, methods=["POST"]),
    Route("/webhooks/{webhook_id}/test", test_ping, methods=["POST"]),
    Route("/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
    Route("/webhooks/deliveries/{delivery_id}", one_delivery, methods=["GET"]),
    Route("/webhooks/deliveries/{delivery_id}/redeliver", redeliver, methods=["POST"]),
]
