"""The OpenAPI 3.1 document of the API, built from the request and response models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

import aia_engine
from aia_engine.activity import ActivityIn
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasktypes import TaskTypeCreate
from aia_engine.webhooks.registry import WebhookCreate, WebhookUpdate
from api import schemas
from api.errors import status_summaries

REF = "#/components/schemas/{model}"
ERROR_STATUSES = status_summaries()  # from the error catalogue, aia_engine/errors.py


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {
        c: {"description": ERROR_STATUSES[c], **_json(_ref(schemas.ErrorEnvelope))} for c in codes
    }


def _op(
    summary: str,
    ok: str,
    model: type[BaseModel],
    *,
    scope: str | None,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = (),
    tag: str = "tasks",
    extra_ok: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "operationId": summary.lower().replace(" ", "_"),
        "responses": {ok: {"description": "Success", **_json(_ref(model))}, **(extra_ok or {})},
    }
    common = ("422", "500", "503", "504")  # 422: the edge refuses NUL in any query parameter
    if scope:
        op["security"] = [{"bearerAuth": [scope]}]
        errors = ("401", "403", "429", *errors)  # 429: the tier's rate limit (or task quota)
    op["responses"].update(_errors(*errors, *common))
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
        op["responses"].update(_errors("400", "413", "415", "422"))
    if params:
        op["parameters"] = params
    return op


IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
    "description": "Repeat a POST safely: the same key returns the original response.",
}
TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
TASK_TYPE = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}}
DELIVERY_ID = {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}}


LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Resume after this event id (the `id:` of the last event received).",
}


def _stream_from(default: str) -> dict[str, Any]:
    return {
        "name": "from",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["now", "start"], "default": default},
        "description": "Without Last-Event-ID: `now` sends only events from then on, `start` "
        "replays the whole history first.",
    }


SSE_DESCRIPTION = (
    "Server-sent events (`text/event-stream`). Each event: `id:` its stream position, "
    "`event:` its type, `data:` the same JSON as a webhook body (event_id, event_type, "
    "timestamp, sequence, data). Reconnect with `Last-Event-ID` to receive every later event "
    "once, in order. Comment lines are heartbeats. A task's stream ends after its final event."
)


def _stream_op(
    summary: str, params: list[dict[str, Any]], errors: tuple[str, ...] = ()
) -> dict[str, Any]:
    op = _op(
        summary, "200", schemas.TaskView, scope="read", params=params,
        errors=(*errors, "422"), tag="streams",
    )  # fmt: skip
    op["description"] = SSE_DESCRIPTION
    op["responses"]["200"] = {
        "description": "An event stream",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    return op


TASK_TYPES_DESCRIPTION = (
    "What POST /tasks/submit's task_type may name: the built-in templates (builtin: true) and "
    "the types operators defined (POST /task-types or `aia-engine task-types create`). A "
    "submission naming any other type is refused (422, E003) with the list of known ones."
)
ACCEPTED_DESCRIPTION = (
    "200 with `status: accepted`, as in the guide: the task, its stages and its first event "
    "are committed and it is queued; the status code does not wait for the work. Follow it at "
    "`tracking_url`. A repeated Idempotency-Key answers the original task, with the header "
    "`Idempotent-Replayed: true`. 422 when task_type names no known type (E003, listing them) "
    "or requirements name a dataset that does not exist (naming the field)."
)


def _accepted_op(op: dict[str, Any], also: dict[str, str] | None = None) -> dict[str, Any]:
    """A submission's 200: the accepted task (or, with `also`, that other body too)."""
    ok = op["responses"]["200"]
    ok["description"] = "Accepted" + (" (or, with dry_run, the plan)" if also else "")
    if also is not None:
        ok.update(_json({"oneOf": [also, _ref(schemas.TaskAccepted)]}))
    ok["headers"] = {
        "Idempotent-Replayed": {
            "description": "`true` when a repeated Idempotency-Key returned the original task",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    op["description"] = ACCEPTED_DESCRIPTION
    return op


@cache
def openapi_document() -> dict[str, Any]:
    task_request = _ref(TaskRequest)
    form_token = {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials", "refresh_token"]},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "scope": {"type": "string"},
            "refresh_token": {"type": "string"},
        },
    }
    oauth_errors = {
        c: {
            "description": d,
            "content": {"application/json": {"schema": _ref(schemas.OAuthErrorBody)}},
        }
        for c, d in {
            "400": "invalid_request, invalid_grant, invalid_scope, unsupported_grant_type",
            "401": "invalid_client",
            "405": "Only POST",
            "429": "Too many token requests",
            "503": "Rate limiter unavailable (fails closed)",
        }.items()
    }
    paths: dict[str, Any] = {
        "/health": {
            "get": _op(
                "Health",
                "200",
                schemas.Health,
                scope=None,
                tag="system",
                extra_ok={"503": {"description": "Degraded", **_json(_ref(schemas.Health))}},
            )
        },
        "/health/live": {
            "get": {
                "summary": "Liveness",
                "description": "This process answers; no dependency is checked.",
                "operationId": "live",
                "tags": ["system"],
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status", "version"],
                                    "properties": {
                                        "status": {"type": "string", "enum": ["alive"]},
                                        "version": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors("422"),
                },
            }
        },
        "/auth/token": {
            "post": {
                "summary": "Token",
                "operationId": "token",
                "tags": ["auth"],
                "requestBody": {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": form_token}},
                },
                "security": [{}, {"basicAuth": []}],
                "responses": {
                    "200": {"description": "Tokens", **_json(_ref(schemas.TokenResponse))},
                    **oauth_errors,
                    **_errors("422"),
                },
            }
        },
        "/auth/revoke": {
            "post": {
                "summary": "Revoke",
                "operationId": "revoke",
                "tags": ["auth"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["token"],
                                "properties": {
                                    "token": {"type": "string"},
                                    "token_type_hint": {"type": "string"},
                                    "client_id": {"type": "string"},
                                    "client_secret": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "security": [{}, {"basicAuth": []}],
                "responses": {
                    "200": {"description": "Revoked (or unknown)", **_json({"type": "object"})},
                    **oauth_errors,
                    **_errors("422"),
                },
            }
        },
        "/tasks/submit": {
            "post": _accepted_op(
                _op(
                    "Submit task",
                    "200",
                    schemas.TaskAccepted,
                    scope="write",
                    body=task_request,
                    params=[IDEMPOTENCY],
                    errors=("409",),
                )
            )
        },
        "/tasks/orchestrate": {
            "post": _accepted_op(
                _op(
                    "Orchestrate workflow",
                    "200",
                    schemas.TaskAccepted,
                    scope="write",
                    body=task_request,
                    errors=("409",),
                    params=[
                        IDEMPOTENCY,
                        {
                            "name": "dry_run",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "boolean"},
                            "description": "Validate and plan without running.",
                        },
                    ],
                ),
                also=_ref(schemas.DryRunPlan),
            )
        },
        "/tasks/batch-submit": {
            "post": _op(
                "Batch submit",
                "200",
                schemas.BatchResult,
                scope="write",
                params=[IDEMPOTENCY],
                body={
                    "type": "object",
                    "required": ["tasks"],
                    "properties": {
                        "tasks": {
                            "type": "array",
                            "minItems": 1,
                            "description": "Each item may carry its own `idempotency_key` "
                            "(1-200 visible ASCII characters), used instead of "
                            "`Idempotency-Key:index`.",
                            "items": task_request,
                        }
                    },
                },
            )
            | {
                "description": "200 like a single submission, whatever the mix: one request "
                "carries many outcomes, each in `results` (`accepted`, or `rejected` with its "
                "error); `created: false` marks an item whose key had already been used."
            }
        },
        "/tasks": {
            "get": _op(
                "List tasks",
                "200",
                schemas.TaskList,
                scope="read",
                errors=("422",),
                params=[
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": [
                                "accepted",
                                "queued",
                                "in_progress",
                                "completed",
                                "failed",
                                "cancelled",
                            ],
                        },
                    },
                    {"name": "task_type", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "created_after",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "created_before",
                        "in": "query",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "updated_after",
                        "in": "query",
                        "description": "Only tasks changed at or after this time (polling).",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
            )
        },
        "/tasks/{task_id}": {
            "get": _op(
                "Get task", "200", schemas.TaskView, scope="read", params=[TASK_ID], errors=("404",)
            )
        },
        "/tasks/{task_id}/cancel": {
            "post": _op(
                "Cancel task",
                "200",
                schemas.CancelResult,
                scope="write",
                params=[TASK_ID],
                errors=("404", "409"),
            )
        },
        "/webhooks/register": {
            "post": _op(
                "Register webhook",
                "201",
                schemas.WebhookPublic,
                scope="write",
                body=_ref(WebhookCreate),
                tag="webhooks",
            )
        },
        "/webhooks": {
            "get": _op("List webhooks", "200", schemas.WebhookList, scope="read", tag="webhooks")
        },
        "/task-types": {
            "get": _op(
                "List task types", "200", schemas.TaskTypeList, scope="read", tag="task types"
            )
            | {"description": TASK_TYPES_DESCRIPTION},
            "post": _op(
                "Create task type",
                "201",
                schemas.TaskTypeView,
                scope="admin",
                body=_ref(TaskTypeCreate),
                errors=("409",),
                tag="task types",
            )
            | {
                "description": "Operators only (admin scope). The workflow is validated like "
                "a submitted one (422: unknown agent, dependency, cycle, limits, a dataset no "
                "one can use); 409 for a built-in or existing name."
            },
        },
        "/task-types/{name}": {
            "get": _op(
                "Get task type",
                "200",
                schemas.TaskTypeView,
                scope="read",
                params=[TASK_TYPE],
                errors=("404",),
                tag="task types",
            ),
            "delete": {
                **_op(
                    "Delete task type",
                    "204",
                    schemas.TaskTypeView,
                    scope="admin",
                    params=[TASK_TYPE],
                    errors=("404", "409"),
                    tag="task types",
                ),
                "description": "Operators only (admin scope). Built-in types cannot be deleted "
                "(409). Tasks already accepted keep the workflow they were accepted with.",
                "responses": {
                    "204": {"description": "Deleted"},
                    **_errors("401", "403", "404", "409", "429", "500", "503", "504"),
                },
            },
        },
        "/webhooks/{webhook_id}": {
            "get": _op(
                "Get webhook",
                "200",
                schemas.WebhookPublic,
                scope="read",
                params=[WEBHOOK_ID],
                errors=("404",),
                tag="webhooks",
            ),
            "patch": _op(
                "Update webhook",
                "200",
                schemas.WebhookPublic,
                scope="write",
                params=[WEBHOOK_ID],
                body=_ref(WebhookUpdate),
                errors=("404",),
                tag="webhooks",
            ),
            "delete": {
                **_op(
                    "Delete webhook",
                    "204",
                    schemas.WebhookPublic,
                    scope="write",
                    params=[WEBHOOK_ID],
                    errors=("404",),
                    tag="webhooks",
                ),
                "responses": {
                    "204": {"description": "Deleted"},
                    **_errors("401", "403", "404", "422", "500", "503", "504"),
                },
            },
        },
        "/webhooks/{webhook_id}/rotate-secret": {
            "post": _op(
                "Rotate webhook secret",
                "200",
                schemas.WebhookPublic,
                scope="write",
                params=[WEBHOOK_ID],
                errors=("404",),
                tag="webhooks",
            )
        },
        "/webhooks/{webhook_id}/test": {
            "post": _op(
                "Test webhook",
                "200",
                schemas.WebhookDeliveryView,
                scope="write",
                params=[WEBHOOK_ID],
                errors=("404", "409"),
                tag="webhooks",
            )
        },
        "/webhooks/{webhook_id}/deliveries": {
            "get": _op(
                "List webhook deliveries",
                "200",
                schemas.DeliveryList,
                scope="read",
                params=[
                    WEBHOOK_ID,
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["pending", "delivered", "failed", "cancelled"],
                        },
                    },
                ],
                errors=("404", "422"),
                tag="webhooks",
            )
        },
        "/webhooks/deliveries/{delivery_id}": {
            "get": _op(
                "Get webhook delivery",
                "200",
                schemas.WebhookDeliveryView,
                scope="read",
                params=[DELIVERY_ID],
                errors=("404",),
                tag="webhooks",
            )
        },
        "/webhooks/deliveries/{delivery_id}/redeliver": {
            "post": _op(
                "Redeliver webhook delivery",
                "202",
                schemas.WebhookDeliveryView,
                scope="write",
                params=[DELIVERY_ID],
                errors=("404", "409"),
                tag="webhooks",
            )
        },
        "/metrics": {
            "get": {
                **_op("Get metrics", "200", schemas.Metrics, scope="read", tag="monitoring"),
                "description": "The guide's JSON; `business_metrics` count the caller's own "
                "tasks. With `Accept: text/plain` the Prometheus exposition (also at "
                "/metrics/prometheus), whose figures cover every client and need `admin`.",
            }
        },
        "/metrics/prometheus": {
            "get": {
                **_op(
                    "Get Prometheus metrics",
                    "200",
                    schemas.Metrics,
                    scope="admin",
                    tag="monitoring",
                ),
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors("401", "403", "422", "429", "500", "503", "504"),
                },
            }
        },
        "/monitoring/track-user-activity": {
            "post": _op(
                "Track user activity",
                "201",
                schemas.ActivityRecorded,
                scope="write",
                body=_ref(ActivityIn),
                tag="monitoring",
            )
        },
        "/monitoring/user-analytics/{user_id}": {
            "get": _op(
                "Get user analytics",
                "200",
                schemas.UserAnalytics,
                scope="read",
                params=[
                    {
                        "name": "user_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                    },
                    {
                        "name": "period",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["1h", "24h", "7d", "30d"]},
                    },
                ],
                errors=("404", "422"),
                tag="monitoring",
            )
        },
        "/quotas": {"get": _op("Get quotas", "200", schemas.Quotas, scope="read", tag="limits")},
        "/tasks/stream": {
            "get": _stream_op("Stream client events", [LAST_EVENT_ID, _stream_from("now")])
        },
        "/tasks/{task_id}/events": {
            "get": _stream_op(
                "Stream task events",
                [TASK_ID, LAST_EVENT_ID, _stream_from("start")],
                errors=("404",),
            )
        },
        "/tasks/{task_id}/retry": {
            "post": _op(
                "Retry task",
                "202",
                schemas.RetryResult,
                scope="write",
                params=[TASK_ID, IDEMPOTENCY],
                errors=("404", "409", "422"),
                extra_ok={
                    "200": {
                        "description": "Repeated Idempotency-Key: the first answer",
                        **_json(_ref(schemas.RetryResult)),
                    }
                },
            )
        },
    }
    components: dict[str, Any] = {}
    for model in (
        TaskRequest,
        WebhookCreate,
        WebhookUpdate,
        schemas.WebhookPublic,
        schemas.WebhookList,
        schemas.WebhookDeliveryView,
        schemas.DeliveryList,
        schemas.Quotas,
        schemas.Metrics,
        ActivityIn,
        schemas.ActivityRecorded,
        schemas.UserAnalytics,
        schemas.ErrorEnvelope,
        schemas.OAuthErrorBody,
        schemas.TokenResponse,
        schemas.TaskAccepted,
        TaskTypeCreate,
        schemas.TaskTypeView,
        schemas.TaskTypeList,
        schemas.TaskView,
        schemas.TaskList,
        schemas.BatchResult,
        schemas.DryRunPlan,
        schemas.CancelResult,
        schemas.RetryResult,
        schemas.Health,
    ):
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AIA Engine API",
            "version": aia_engine.__version__,
            "description": "Tasks and staged agent workflows on Celery, durable in PostgreSQL. "
            "Errors use one envelope; see /errors for the code catalogue.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic"},
            },
        },
    }
