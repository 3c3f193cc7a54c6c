"""What an endpoint promises, declared next to its handler: `@operation(...)`.

A declaration names the summary, the scope, the request body model, the response models per
status and the catalogue codes the operation answers beyond the ones every operation may;
api/openapi.py walks the route table and builds /openapi.json from these declarations and
the pydantic models, so a new endpoint is one declaration, not an edit of the document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

F = TypeVar("F", bound=Callable[..., Any])

Model = type[BaseModel]
Param = dict[str, Any]
"""One OpenAPI parameter object (see `query`, `header` and `path_param`)."""


@dataclass(frozen=True)
class Reply:
    """One response of an operation other than a catalogue error.

    `model`: the JSON body's model, or several (the body is one of them); None with no
    `media` means no body (204). `media`: a non-JSON body (event stream, text, HTML)."""

    model: Model | tuple[Model, ...] | None = None
    description: str = "Success"
    media: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Form:
    """A form-encoded request body (the OAuth2 endpoints), described by a model."""

    model: Model


@dataclass(frozen=True)
class Upload:
    """A request body that is a file, streamed, in one of the `media` types (POST /datasets)."""

    media: Sequence[str]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    responses: Mapping[int, Reply | Model]
    scope: str | None = None
    """The bearer token scope it needs; None for a public operation."""
    body: Model | Form | Upload | None = None
    errors: Sequence[str] = ()
    """Catalogue codes answered beyond those of every operation (api/openapi.py `implied`)."""
    params: Sequence[Param] = ()
    description: str | None = None
    operation_id: str | None = None
    security: Sequence[Mapping[str, list[str]]] | None = None
    """Other security requirements than the bearer scope (the token endpoint's)."""


OPERATIONS = "__operations__"
REFUSED = "__refused_methods__"


def operation(
    summary: str,
    *,
    tag: str,
    responses: Mapping[int, Reply | Model],
    method: str | None = None,
    refuses: Sequence[str] = (),
    **kw: Any,
) -> Callable[[F], F]:
    """Declare the contract of `method` on the decorated handler (of its only method when
    None). `refuses`: methods routed here only to be answered 405, not operations."""

    def mark(fn: F) -> F:
        ops: dict[str | None, Operation] = fn.__dict__.setdefault(OPERATIONS, {})
        ops[method] = Operation(summary, tag, responses, **kw)
        fn.__dict__.setdefault(REFUSED, set()).update(refuses)
        return fn

    return mark


def declared(endpoint: Any, method: str) -> Operation | None:
    ops: dict[str | None, Operation] = getattr(endpoint, OPERATIONS, {})
    return ops.get(method, ops.get(None))


def refused(endpoint: Any) -> set[str]:
    return set(getattr(endpoint, REFUSED, ()))


def _schema(type_: Any, default: Any) -> dict[str, Any]:
    schema = TypeAdapter(type_).json_schema()
    if default is not None:
        schema["default"] = default
    return schema


def query(name: str, type_: Any, description: str | None = None, default: Any = None) -> Param:
    param: Param = {"name": name, "in": "query", "required": False}
    param["schema"] = _schema(type_, default)
    if description:
        param["description"] = description
    return param


def header(name: str, type_: Any, description: str) -> Param:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": _schema(type_, None),
        "description": description,
    }


def path_param(name: str, type_: Any = str) -> Param:
    """Only where a path parameter is narrower than a string (others are read from the route)."""
    return {"name": name, "in": "path", "required": True, "schema": _schema(type_, None)}
