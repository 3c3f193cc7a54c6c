"""The one place errors become HTTP responses: the guide's envelope with a stable code catalogue.

Every error leaves as {"error": {type, message, code, details, timestamp, request_id,
documentation_url}, "detail": message}; the documentation URL points at /errors/{code}, served
by this API. `detail` repeats the message for clients written against FastAPI's error shape.
The token endpoint alone answers in RFC 6749's flat form (see api/routes/auth.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aia_engine.errors import (
    BadRequest,
    Conflict,
    EngineError,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchEndpoint,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimitExceeded,
    TransientError,
    Unauthenticated,
    UnsupportedMediaType,
    catalogue,
)
from aia_engine.redaction import redact_error

log = logging.getLogger(__name__)


CATALOGUE: Mapping[str, type[EngineError]] = MappingProxyType(catalogue())
"""Every error code and its class (.code .status .type .title .description .where), in code
order: a read-only view of aia_engine.errors, where codes are declared."""

ANSWERED: Mapping[str, type[EngineError]] = MappingProxyType(
    {code: cls for code, cls in CATALOGUE.items() if cls.where != "stage"}
)
"""The codes an HTTP response can carry (stage-only codes are stored, never answered)."""


def status_summaries() -> dict[str, str]:
    """For each HTTP status an error response can have, the titles of its codes, as the
    OpenAPI document's error response descriptions."""
    by_status: dict[str, list[str]] = {}
    for cls in ANSWERED.values():
        by_status.setdefault(str(cls.status), []).append(f"{cls.title} ({cls.code})")
    return {status: "; ".join(titles) for status, titles in sorted(by_status.items())}


# The code an error answers with when its own may not be answered, by its status: a stage
# error raised inside a request (none is today) answers as the domain error of its status; a
# Starlette HTTPException (raised by the framework itself) as the edge's error of its status.
_DOMAIN_BY_STATUS = {
    c.status: c.code
    for c in (Unauthenticated, PermissionDenied, NotFound, Conflict, InvalidRequest, TransientError)
}
_EDGE_BY_STATUS = {
    c.status: c.code for c in (BadRequest, PayloadTooLarge, UnsupportedMediaType, RateLimitExceeded)
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
    entry = ANSWERED[code]  # a stage-only code is never answered
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


def _code_for(exc: EngineError) -> str:
    if exc.code in ANSWERED:
        return exc.code
    return _DOMAIN_BY_STATUS.get(exc.status, EngineError.code)


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
    headers = {**exc.headers, **www_authenticate(exc)}
    return envelope(request, _code_for(exc), exc.message, details, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return envelope(
            request,
            MethodNotAllowed.code,
            f"method {request.method} is not allowed on {request.url.path}",
            {"method": request.method},
            headers=dict(exc.headers or {}),
        )
    if exc.status_code == 404:
        return envelope(
            request,
            NoSuchEndpoint.code,
            f"no endpoint at {request.url.path}",
            {"path": request.url.path},
        )
    code = _EDGE_BY_STATUS.get(exc.status_code, EngineError.code)
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
    return envelope(
        request, EngineError.code, "unexpected server error; contact support with the request_id"
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    EngineError: engine_error,
    HTTPException: http_error,
    Exception: internal_error,
}


async def unavailable(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, exc)
    return envelope(
        request,
        TransientError.code,
        "a dependency (database or broker) is unavailable; retry after a delay",
        headers={"Retry-After": "5"},
    )
