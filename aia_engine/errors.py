"""Domain errors: one tree, each class with an HTTP status, a type and a stable code.

    EngineError
    ├── NotFound                 404  (TaskNotFound, ...)
    ├── Conflict                 409  (TaskStateConflict)
    ├── InvalidRequest           422  (InvalidWorkflow, UnknownTaskType, UnknownAgent)
    ├── PermissionDenied         403
    ├── Unauthenticated          401
    └── TransientError           503  (a retry may succeed: broker or database unreachable)

The API maps these to the guide's envelope in one place; workers store `to_dict()` on the stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from aia_engine.redaction import redact_error


class EngineError(Exception):
    """Raised for any error the engine reports to a caller."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "InternalServerError"
    code: ClassVar[str] = "E500"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """What a caller may see (stored on a stage, or a batch item's error): no secrets."""
        message, details = redact_error(self.message, self.details)
        return {"type": self.type, "code": self.code, "message": message, "details": details}


class NotFound(EngineError):
    """Raised when an addressed object does not exist (or belongs to another client)."""

    status = 404
    type = "NotFound"
    code = "E004"


class TaskNotFound(NotFound):
    """Raised when no task with that id is visible to the caller."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found", task_id=task_id)


class Conflict(EngineError):
    """Raised when a request conflicts with the current state of an object."""

    status = 409
    type = "Conflict"
    code = "E009"


class TaskStateConflict(Conflict):
    """Raised when an operation does not apply to a task in its current status."""

    def __init__(self, task_id: str, status: str, operation: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"cannot {operation} task {task_id!r}: it is {status!r}; "
            f"{operation} applies to tasks that are {', '.join(allowed)}",
            task_id=task_id,
            status=status,
        )


class InvalidRequest(EngineError):
    """Raised when submitted data fails validation."""

    status = 422
    type = "ValidationError"
    code = "E001"


class InvalidWorkflow(InvalidRequest):
    """Raised when a workflow spec is malformed or its graph is not a valid DAG."""

    code = "E002"


class UnknownTaskType(InvalidRequest):
    """Raised when a `task_type` names no workflow template."""

    code = "E003"

    def __init__(self, task_type: str, known: list[str]) -> None:
        names = sorted(set(known))
        shown = ", ".join(names[:50]) + (f" and {len(names) - 50} more" if len(names) > 50 else "")
        super().__init__(
            f"unknown task_type {task_type!r}; known task types: {shown}; or send an explicit "
            "workflow (an operator defines new types with `aia-engine task-types create`)",
            field="task_type",
            issue="unknown task type",
            provided_value=task_type[:200],
            known=names[:1000],
        )


class PermissionDenied(EngineError):
    """Raised when the caller is authenticated but lacks the scope for an operation."""

    status = 403
    type = "Forbidden"
    code = "E403"


class Unauthenticated(EngineError):
    """Raised when the caller could not be authenticated."""

    status = 401
    type = "Unauthorized"
    code = "E401"


class TransientError(EngineError):
    """Raised when a dependency (broker, database, upstream service) is unreachable for now."""

    status = 503
    type = "ServiceUnavailable"
    code = "E503"


class AgentError(EngineError):
    """Raised by an agent when its input cannot be processed; the stage fails with this message."""

    status = 422
    type = "AgentError"
    code = "E010"


class StageTimedOut(EngineError):
    """Raised when a stage exceeds its time limit."""

    status = 504
    type = "StageTimedOut"
    code = "E011"


class StageOutputNotStorable(EngineError):
    """Raised when a stage's output cannot be stored: not JSON (NaN, Infinity, ...), over
    AIA_MAX_STAGE_OUTPUT_BYTES, or refused by PostgreSQL; the stage fails with it."""

    status = 500
    type = "StageOutputNotStorable"
    code = "E020"


class StageLost(EngineError):
    """Recorded when a stage's runs kept ending without an outcome (its worker died, its lease
    ran out) more than AIA_MAX_STAGE_REDISPATCHES times; the stage fails with it."""

    status = 500
    type = "StageLost"
    code = "E021"
