"""Every JSON answer of a handler is made here: `reply(request, data, status=...)` turns a use
case's result into the body through the model the route declared for that status
(`@operation(responses=...)`, api/contract.py), so the declaration and the wire cannot drift.

The body is the model's serialization of `data`, unset fields left out: a key the use case did
not write is not added, one it wrote (even as null) is kept, and the keys come in the model's
order. When `data` does not fit the declared model (a missing required field, a value of the
wrong type) or the route declares no body for that status, `AIA_CONTRACT_CHECK` decides:

- `log` (the default, production): an error is logged (where and which fields, never a
  value: a reply may hold a secret) and `data` is answered as it is, as before the contract
  existed. Never a 500: when a reply is built the use case has done its work — a submission
  is committed, a cancel applied, a webhook secret generated and shown once — and a client
  told "failed" would repeat it or lose the secret. A field the model does not know is left
  off the wire (the contract is what is served), unlogged: finding it needs a second pass.
- `raise` (the test suite): the body must be `data` again field for field — same keys, equal
  values of the same JSON types — or ContractDrift is raised (a 500 E500 the test sees). That
  second pass catches an unknown field and a coerced value too ("1" for 1, 0.0 for 0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError
from starlette.requests import Request
from starlette.responses import Response

from api.contract import OPERATIONS, Operation, Reply, declared, refused

log = logging.getLogger(__name__)

Check = Literal["log", "raise"]
JSON = "application/json"


class ContractDrift(RuntimeError):
    """An answer that is not exactly its declared model (raised under AIA_CONTRACT_CHECK=raise)."""


@cache
def adapter(
    endpoint: Any, method: str, status: int, model: type[BaseModel] | None = None
) -> TypeAdapter[Any]:
    """The declared model of one answer of `endpoint`, ready to validate and dump (built once).

    `model` picks one of a union the route declared; without it a union is validated as a
    union (pydantic's smart mode picks the member that fits)."""
    op = declared(endpoint, method)
    if op is None and method in refused(endpoint):
        # A method routed here only to be refused: its answer is declared on the operations.
        ops: dict[str | None, Operation] = getattr(endpoint, OPERATIONS, {})
        op = next((o for o in ops.values() if status in o.responses), None)
    if op is None:
        raise LookupError(f"{getattr(endpoint, '__qualname__', endpoint)} declares no {method}")
    answer = op.responses.get(status)
    if answer is None:
        raise LookupError(f"{op.summary} declares no {status} answer")
    found = answer.model if isinstance(answer, Reply) else answer
    if found is None:
        raise LookupError(f"{op.summary} declares no JSON body for {status}")
    members = found if isinstance(found, tuple) else (found,)
    if model is not None:
        if model not in members:
            raise LookupError(f"{op.summary} {status} declares {members}, not {model.__name__}")
        return TypeAdapter(model)
    if len(members) == 1:
        return TypeAdapter(members[0])
    union: Any = Union[members]  # noqa: UP007  # a Union of a tuple of classes known at run time
    return TypeAdapter(union)


def plain(data: Any) -> bytes:
    """What the body was before it went through a model: starlette's JSONResponse rendering."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def render(shape: TypeAdapter[Any], data: Any) -> tuple[bytes, list[str]]:
    """The body through the model, and the top-level keys of `data` the model dropped (a field
    a use case added without declaring it: cheap to see, so production logs it too)."""
    value = shape.validate_python(data)
    dropped = []
    if isinstance(value, BaseModel) and isinstance(data, dict):
        dropped = sorted(str(k) for k in data.keys() - value.model_fields_set)
    return shape.dump_json(value, exclude_unset=True), dropped


def _check(request: Request) -> Check:
    state = request.app.state
    res = getattr(state, "resources", None)
    return "log" if res is None else res.settings.contract_check


def reply(
    request: Request,
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    model: type[BaseModel] | None = None,
) -> Response:
    """The JSON answer `data` as the handler of `request` declared it for `status`."""
    method = "GET" if request.method == "HEAD" else request.method
    strict = _check(request) == "raise"
    try:
        shape = adapter(request.scope["endpoint"], method, status, model)
        body, dropped = render(shape, data)
    except (LookupError, ValidationError, PydanticSerializationError) as exc:
        if strict:
            raise ContractDrift(f"{_where(request, status)}: {_fields(exc)}") from exc
        log.error(
            "reply of %s is not its declared model: %s", _where(request, status), _fields(exc)
        )
        body = plain(data)
    else:
        if dropped and not strict:
            log.error(
                "reply of %s drops fields its model does not declare: %s",
                _where(request, status),
                ", ".join(dropped),
            )
        if strict:
            drift = differs(json.loads(body), json.loads(plain(data)))
            if drift is not None:
                raise ContractDrift(f"{_where(request, status)}: {drift}")
    return Response(body, status_code=status, headers=headers, media_type=JSON)


def _where(request: Request, status: int) -> str:
    return f"{request.method} {request.url.path} {status}"


def _fields(exc: Exception) -> str:
    """What did not fit, without the values (a reply may hold a secret or a token)."""
    if isinstance(exc, LookupError):
        return str(exc)  # no declaration for this answer: what is missing
    if not isinstance(exc, ValidationError):
        return type(exc).__name__
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def differs(sent: Any, given: Any, at: str = "") -> str | None:
    """Where the body `sent` is not `given` field for field (same keys, equal values of the same
    JSON types), or None. Not the order of the keys: the wire has the model's order, which is
    the use cases' except where they pass on a stored JSONB object (a repeated retry's answer)."""
    if isinstance(given, dict):
        if not isinstance(sent, dict):
            return f"{at or '(body)'}: an object was given"
        if sent.keys() != given.keys():
            lost = [k for k in given if k not in sent]
            added = [k for k in sent if k not in given]
            return f"{at or '(body)'}: fields not in the model {lost}, added {added}"
        for key, value in given.items():
            found = differs(sent[key], value, f"{at}.{key}" if at else key)
            if found is not None:
                return found
        return None
    if isinstance(given, list):
        if not isinstance(sent, list) or len(sent) != len(given):
            return f"{at}: a list of {len(given)} was given"
        for i, (s, g) in enumerate(zip(sent, given, strict=True)):
            found = differs(s, g, f"{at}[{i}]")
            if found is not None:
                return found
        return None
    if type(sent) is not type(given) or sent != given:
        return f"{at}: {type(given).__name__} given, {type(sent).__name__} sent"
    return None
