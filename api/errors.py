"""The one place errors become HTTP responses: the guide's envelope with a stable code catalogue.

Every error leaves as {"error": {type, message, code, details, timestamp, request_id,
documentation_url}, "detail": message}; the documentation URL points at /errors/{code}, served
by this API. `detail` repeats the message for clients written against FastAPI's error shape.
The token endpoint alone answers in RFC 6749's flat form (see api/routes/auth.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aia_engine.errors import EngineError, PermissionDenied, Unauthenticated
from aia_engine.redaction import redact_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    type: str
    title: str
    description: str


CATALOGUE: dict[str, ErrorCode] = {
    e.code: e
    for e in [
        ErrorCode(
            "E001",
            422,
            "ValidationError",
            "Invalid request data",
            "A field is missing, has the wrong type or is out of range. details.field names it, "
            "details.issue says what is wrong and details.provided_value echoes what was sent "
            "(the value of a secret-bearing field shows as [redacted]). Text holding a NUL "
            "character or a lone surrogate, in the body or in a query parameter, is refused here.",
        ),
        ErrorCode(
            "E002",
            422,
            "ValidationError",
            "Invalid workflow",
            "The workflow is not a valid DAG: an unknown or self dependency, a cycle (named in "
            "details.cycle), a duplicate stage, a bad stage option, or too many stages.",
        ),
        ErrorCode(
            "E003",
            422,
            "ValidationError",
            "Unknown task type",
            "task_type names no template and no workflow was given. The message lists the known types.",
        ),
        ErrorCode(
            "E004",
            404,
            "NotFound",
            "Resource not found",
            "No object with that id is visible to your client (objects of other clients answer the "
            "same, and so does any path holding a NUL character).",
        ),
        ErrorCode(
            "E005",
            422,
            "ValidationError",
            "Unknown agent",
            "A stage or agents_required names an agent that is not registered.",
        ),
        ErrorCode(
            "E007",
            422,
            "ValidationError",
            "Unsafe webhook URL",
            "webhook_url must be http(s) and every address it resolves to publicly routable: "
            "loopback, private, link-local, CGNAT, multicast, reserved and cloud-metadata addresses "
            "are refused, as are user information and encoded hosts. Operators admit internal "
            "receivers with AIA_WEBHOOK_ALLOW (exact host:port).",
        ),
        ErrorCode(
            "E009",
            409,
            "Conflict",
            "Conflict with the current state",
            "The operation does not apply to the object in its current state, or an Idempotency-Key "
            "was reused with a different request body.",
        ),
        ErrorCode(
            "E400",
            400,
            "BadRequest",
            "Malformed request",
            "The body is not valid JSON, is nested deeper than the API accepts, or holds a number "
            "it cannot read: an integer of more than 4,300 digits, or one beyond ±1.8e308.",
        ),
        ErrorCode(
            "E401",
            401,
            "Unauthorized",
            "Authentication required",
            "The Authorization header is missing, or the bearer token is invalid or expired. "
            "Get a token from POST /auth/token.",
        ),
        ErrorCode(
            "E403",
            403,
            "Forbidden",
            "Insufficient scope",
            "The token lacks the scope this operation needs: read for GET, write for changes, admin for operators.",
        ),
        ErrorCode(
            "E404", 404, "NotFound", "No such endpoint", "The path does not exist. See /docs."
        ),
        ErrorCode(
            "E405",
            405,
            "MethodNotAllowed",
            "Method not allowed",
            "The path exists but not with this method; the Allow header lists the methods it takes.",
        ),
        ErrorCode(
            "E413",
            413,
            "PayloadTooLarge",
            "Request body too large",
            "The body exceeds the API's size limit (details.limit_bytes).",
        ),
        ErrorCode(
            "E415",
            415,
            "UnsupportedMediaType",
            "Unsupported content type",
            "Send JSON bodies with Content-Type: application/json.",
        ),
        ErrorCode(
            "E429",
            429,
            "RateLimitExceeded",
            "Too many requests",
            "Wait for the number of seconds in the Retry-After header, then retry.",
        ),
        ErrorCode(
            "E012",
            429,
            "TooManyStreams",
            "Too many open event streams",
            "This client holds as many open event streams as it may (AIA_SSE_MAX_STREAMS_PER_"
            "CLIENT). Close one, or follow several tasks on GET /tasks/stream.",
        ),
        ErrorCode(
            "E013",
            429,
            "QuotaExceeded",
            "Too many active tasks",
            "This client has as many active (accepted, queued or running) tasks as its tier "
            "allows. Wait for some to finish or cancel some; GET /quotas shows where you stand.",
        ),
        ErrorCode(
            "E020",
            500,
            "StageOutputNotStorable",
            "Stage output could not be stored",
            "Found in a task's or stage's error, not in a response: the stage's agent returned an "
            "output that cannot be stored, so the stage failed instead of staying running. "
            "details.reason says why: not_object (not a JSON object), not_json (a value JSON has "
            "no form for, such as NaN or Infinity), too_large (over AIA_MAX_STAGE_OUTPUT_BYTES; "
            "details.size_bytes and details.limit_bytes give both), refused (PostgreSQL refused "
            "it, e.g. a NUL character; the message quotes PostgreSQL). Change the input or the "
            "agent, then retry the task.",
        ),
        ErrorCode(
            "E021",
            500,
            "StageLost",
            "Stage lost",
            "Found in a task's or stage's error, not in a response: runs of the stage kept ending "
            "without recording an outcome (its worker process died, or it overran its time limit "
            "and was killed), and after AIA_MAX_STAGE_REDISPATCHES more runs it was failed rather "
            "than run again. details.runs_lost and details.limit give the counts. Look for what "
            "kills the stage (an agent crashing its process or ignoring its time limit), then "
            "retry the task.",
        ),
        ErrorCode(
            "E500",
            500,
            "InternalServerError",
            "Unexpected server error",
            "Something failed on our side. Contact support with the request_id.",
        ),
        ErrorCode(
            "E503",
            503,
            "ServiceUnavailable",
            "Service temporarily unavailable",
            "A dependency (database or broker) is unreachable. Retry after a delay.",
        ),
        ErrorCode(
            "E504",
            504,
            "GatewayTimeout",
            "Request timed out",
            "The request took longer than the API's timeout. Retry, or submit work asynchronously.",
        ),
    ]
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(
    request: Request,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    entry = CATALOGUE[code]
    message, details = redact_error(message, details or {})  # no error echoes a secret
    body = {
        "error": {
            "type": type_ or entry.type,
            "message": message,
            "code": code,
            "details": details,
            "timestamp": now_iso(),
            "request_id": getattr(request.state, "request_id", ""),
            "documentation_url": str(request.base_url).rstrip("/") + f"/errors/{code}",
        },
        # The message again where FastAPI-style clients look, such as the guide's own tests
        # (`assert "detail" in response.json()`); the envelope above is the contract.
        "detail": message,
    }
    return JSONResponse(body, status_code=entry.status, headers=headers)


class ApiError(Exception):
    """An HTTP-level error raised by the API layer itself (not a domain error)."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details, self.headers = code, message, details or {}, headers


def _code_for(exc: EngineError) -> str:
    if exc.code in CATALOGUE:
        return exc.code
    return {401: "E401", 403: "E403", 404: "E004", 409: "E009", 422: "E001", 503: "E503"}.get(
        exc.status, "E500"
    )


def www_authenticate(exc: EngineError) -> dict[str, str]:
    if isinstance(exc, Unauthenticated):
        if exc.details.get("reason") == "missing":
            return {"WWW-Authenticate": 'Bearer realm="aia"'}
        return {
            "WWW-Authenticate": f'Bearer realm="aia", error="invalid_token", error_description="{exc.message}"'
        }
    if isinstance(exc, PermissionDenied):
        return {
            "WWW-Authenticate": f'Bearer realm="aia", error="insufficient_scope", scope="{exc.details.get("scope", "")}"'
        }
    return {}


async def engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    details = {k: v for k, v in exc.details.items() if k != "reason"}
    return envelope(request, _code_for(exc), exc.message, details, headers=www_authenticate(exc))


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return envelope(request, exc.code, exc.message, exc.details, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return envelope(
            request,
            "E405",
            f"method {request.method} is not allowed on {request.url.path}",
            {"method": request.method},
            headers=dict(exc.headers or {}),
        )
    if exc.status_code == 404:
        return envelope(
            request, "E404", f"no endpoint at {request.url.path}", {"path": request.url.path}
        )
    code = {400: "E400", 413: "E413", 415: "E415", 429: "E429"}.get(exc.status_code, "E500")
    return envelope(request, code, str(exc.detail))


async def internal_error(request: Request, exc: Exception) -> Response:
    # Logged once here with the request's context; the body carries no traceback.
    log.error(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        getattr(request.state, "request_id", ""),
        exc_info=exc,
    )
    return envelope(request, "E500", "unexpected server error; contact support with the request_id")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    EngineError: engine_error,
    ApiError: api_error,
    HTTPException: http_error,
    Exception: internal_error,
}


async def unavailable(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, exc)
    return envelope(
        request,
        "E503",
        "a dependency (database or broker) is unavailable; retry after a delay",
        headers={"Retry-After": "5"},
    )
