"""Reading JSON bodies with the API's limits: content type, size, depth, duplicate keys."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from aia_engine.validation import validate_model
from api.errors import ApiError
from workflows.spec import load_json_strict

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            "E413",
            f"request body is {declared} bytes; the limit is {limit}",
            {"limit_bytes": limit},
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("E413", f"request body exceeds {limit} bytes", {"limit_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def depth_of(value: Any) -> int:
    """Nesting depth of a parsed JSON value, iteratively (no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


async def read_json(request: Request, *, limit: int, max_depth: int) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            "E415",
            f"content type {content_type or 'none'!r} is not supported; send application/json",
            {"content_type": content_type},
        )
    raw = await read_body(request, limit)
    if not raw.strip():
        raise ApiError("E400", "request body is empty; send a JSON object")
    try:
        data = load_json_strict(raw)
    except RecursionError as exc:
        raise ApiError(
            "E400", f"JSON is nested deeper than {max_depth} levels", {"max_depth": max_depth}
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            {"line": exc.lineno, "column": exc.colno}
            if isinstance(exc, json.JSONDecodeError)
            else {}
        )
        raise ApiError("E400", f"request body is not valid JSON: {exc}", where) from exc
    if depth_of(data) > max_depth:
        raise ApiError(
            "E400", f"JSON is nested deeper than {max_depth} levels", {"max_depth": max_depth}
        )
    check_storable(data)
    return data


def check_storable(data: Any) -> None:
    """Refuse what valid JSON allows but PostgreSQL's jsonb cannot hold: NaN and Infinity,
    lone UTF-16 surrogates (`\\ud800`) and NUL characters (`\\u0000`)."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except ValueError as exc:  # NaN/Infinity; UnicodeEncodeError is a ValueError too
        raise ApiError(
            "E400",
            "request body holds a value JSON storage refuses (NaN, Infinity or a lone "
            f"surrogate): {type(exc).__name__}",
        ) from exc
    if _has_nul(data):
        raise ApiError("E400", "request body holds a NUL character (\\u0000), which is not allowed")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


async def json_body(request: Request) -> Any:
    """The request's JSON body, within the app's size and depth limits."""
    settings = request.app.state.resources.settings
    return await read_json(
        request, limit=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


def parse_model(model: type[M], data: Any) -> M:
    """Validate `data` into `model`; the first problem becomes the guide's 422 details."""
    return validate_model(model, data)
