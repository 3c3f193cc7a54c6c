"""The SDK's exceptions, one class per kind of failure, built from the API's error envelope.

Every answer the API refuses carries `{"error": {"type", "code", "message", "details",
"request_id", ...}}`; `AIAAPIError` keeps each part as an attribute, and `error_for()` picks
the subclass from the status. The token endpoint answers in OAuth2's flat form
(`{"error": "invalid_client", "error_description": ...}`), which maps the same way.

    try:
        await client.tasks.submit(task_type="data_analysis", description="")
    except AIAValidationError as exc:
        print(exc.code, exc.details.get("field"), exc.request_id)
"""

from __future__ import annotations

from typing import Any

import httpx


class AIAError(Exception):
    """Base of every exception the SDK raises."""


class AIAConfigurationError(AIAError):
    """The client cannot be built: no credentials, no base URL for the environment."""


class AIACancelledError(AIAError):
    """The client's `cancel()` was called: a wait to retry stopped, and nothing more is sent."""


class AIAAPIError(AIAError):
    """An answer in the API's error envelope (or a failure to get one: `status` 0)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        error_type: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.status_code = status
        self.code = code
        self.error_type = error_type
        self.details: dict[str, Any] = details or {}
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = " ".join(str(part) for part in (self.status or None, self.code) if part)
        tail = f" (request_id {self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"


class AIAConnectionError(AIAAPIError):
    """No answer: the connection failed, was cut or timed out (after the retries allowed)."""


class AIAValidationError(AIAAPIError):
    """400 or 422: the request is malformed or a value is invalid; `details["field"]` names it."""


class AIAAuthenticationError(AIAAPIError):
    """401: the credentials or the token were refused."""


class AIAPermissionError(AIAAPIError):
    """403: authenticated, but this client may not do that (scope, ownership)."""


class AIANotFoundError(AIAAPIError):
    """404: no such resource for this client (another client's resources are not found too)."""


class AIAConflictError(AIAAPIError):
    """409: the resource's state does not allow it (a task already finished, a name in use)."""


class AIARateLimitError(AIAAPIError):
    """429: a rate limit or quota; `retry_after` says how many seconds to wait."""


class AIAServerError(AIAAPIError):
    """5xx: the server failed or is unavailable (retried first when that is safe)."""


_BY_STATUS: dict[int, type[AIAAPIError]] = {
    400: AIAValidationError,
    401: AIAAuthenticationError,
    403: AIAPermissionError,
    404: AIANotFoundError,
    409: AIAConflictError,
    422: AIAValidationError,
    429: AIARateLimitError,
}


def error_class(status: int) -> type[AIAAPIError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return AIAServerError if status >= 500 else AIAAPIError


def error_for(response: httpx.Response, *, retry_after: float | None = None) -> AIAAPIError:
    """The exception for an error answer, from whichever error form it carries."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    fields: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        fields = body["error"]
        message = str(fields.get("message") or response.reason_phrase)
        code = fields.get("code")
    elif isinstance(body, dict) and isinstance(body.get("error"), str):  # OAuth2's flat form
        message = str(body.get("error_description") or body["error"])
        code = body["error"]
    else:
        message = f"HTTP {response.status_code} {response.reason_phrase}: {str(body)[:200]}"
        code = None
    details = fields.get("details")
    return error_class(response.status_code)(
        message,
        status=response.status_code,
        code=str(code) if code is not None else None,
        error_type=fields.get("type"),
        details=details if isinstance(details, dict) else {},
        request_id=fields.get("request_id") or response.headers.get("x-request-id"),
        body=body,
        retry_after=retry_after,
    )


class AIATimeoutError(AIAError):
    """`tasks.wait()` ran out of time; `details["pending"]` maps each unfinished task to its
    last status."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
