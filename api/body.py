"""Reading JSON bodies with the API's limits: content type, size, depth, duplicate keys, and
values the parser accepts but storage refuses (NUL, lone surrogates, non-finite numbers)."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from aia_engine.errors import BadRequest, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from aia_engine.validation import validate_model
from workflows.spec import load_json_strict

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body is {declared} bytes; the limit is {limit}", limit_bytes=limit
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", limit_bytes=limit)
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
        raise UnsupportedMediaType(
            f"content type {content_type or 'none'!r} is not supported; send application/json",
            content_type=content_type,
        )
    raw = await read_body(request, limit)
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        data = load_json_strict(raw)
    except RecursionError as exc:
        raise BadRequest(
            f"JSON is nested deeper than {max_depth} levels", max_depth=max_depth
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            {"line": exc.lineno, "column": exc.colno}
            if isinstance(exc, json.JSONDecodeError)
            else {}
        )
        raise BadRequest(f"request body is not valid JSON: {exc}", **where) from exc
    except ValueError as exc:  # the only other one: an integer literal past Python's limit
        digits = sys.get_int_max_str_digits()
        raise BadRequest(
            f"request body holds an integer of more than {digits} digits; send large numbers "
            "as strings",
            max_digits=digits,
        ) from exc
    if depth_of(data) > max_depth:
        raise BadRequest(f"JSON is nested deeper than {max_depth} levels", max_depth=max_depth)
    check_storable(data)
    return data


# What PostgreSQL's text and jsonb refuse: NUL, and UTF-16 surrogates (valid as JSON escapes,
# and as raw bytes through json.loads' surrogatepass, but not UTF-8).
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")


def check_storable(data: Any) -> None:
    """Refuse what the parser accepts but storage cannot hold. A number that overflows to
    infinity (`1e999`) or NaN/Infinity (not JSON) is a 400 like other unreadable numbers; a
    string or key holding NUL or a lone surrogate is a 422 naming the field."""
    if not _has_unstorable(data):
        return
    field, value = _locate_unstorable(data)
    if isinstance(value, float):
        raise BadRequest(
            f"{field or 'body'}: number is out of range (NaN, Infinity, or beyond "
            "±1.8e308); send a finite number",
            field=field,
        )
    raise InvalidRequest(
        f"{field or 'body'}: text holds a character that cannot be stored (NUL \\u0000 or a "
        "lone UTF-16 surrogate)",
        field=field or "body",
        issue="unstorable character",
        provided_value=_shown(value),
    )


def _has_unstorable(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE_CHAR.search(node):
                return True
        elif isinstance(node, float):
            if not math.isfinite(node):
                return True
        elif isinstance(node, dict):
            if any(_UNSTORABLE_CHAR.search(k) for k in node):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _locate_unstorable(value: Any) -> tuple[str, Any]:
    """The dotted path of the first unstorable value (a key's object, for a bad key), and it."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str) and _UNSTORABLE_CHAR.search(node):
            return ".".join(path), node
        if isinstance(node, float) and not math.isfinite(node):
            return ".".join(path), node
        if isinstance(node, dict):
            for key in node:
                if _UNSTORABLE_CHAR.search(key):
                    return ".".join(path), key
            stack.extend((v, (*path, str(k))) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((v, (*path, str(i))) for i, v in reversed(list(enumerate(node))))
    return "", None


def _shown(text: str) -> str:
    """The value as sent, with the characters JSON output cannot carry spelled as escapes."""
    clipped = text[:200]
    return _UNSTORABLE_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", clipped)


async def json_body(request: Request) -> Any:
    """The request's JSON body, within the app's size and depth limits."""
    settings = request.app.state.resources.settings
    return await read_json(
        request, limit=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


def parse_model(model: type[M], data: Any) -> M:
    """Validate `data` into `model`; the first problem becomes the guide's 422 details."""
    return validate_model(model, data)
