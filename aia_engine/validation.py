"""Turning pydantic validation errors into the guide's 422 details (field, issue, provided_value)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aia_engine.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], data: Any, *, where: str = "body") -> M:
    """`model` from `data`, or an `InvalidRequest` naming the first offending field."""
    if not isinstance(data, dict):
        raise InvalidRequest(
            f"{where} must be a JSON object",
            field=where,
            issue="wrong type",
            provided_value=type(data).__name__,
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        field = ".".join(str(p) for p in first["loc"]) or where
        raise InvalidRequest(
            f"{field}: {first['msg']}",
            field=field,
            issue=first["msg"],
            provided_value=_short(first.get("input")),
            errors=[
                {"field": ".".join(str(p) for p in e["loc"]), "issue": e["msg"]}
                for e in errors[:20]
            ],
        ) from exc


def _short(value: Any) -> Any:
    if isinstance(value, dict | list) and len(json.dumps(value, default=str)) > 500:
        return f"<{type(value).__name__} too large to echo>"
    if isinstance(value, str) and len(value) > 500:
        return value[:500] + "..."
    return value
