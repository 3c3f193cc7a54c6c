"""The OpenAPI 3.1 document, generated from the route table, the declarations next to each
handler (api/contract.py) and the pydantic models; error responses from the code catalogue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from starlette.routing import BaseRoute, Route

import aia_engine
from api.contract import Form, Model, Operation, Reply, Upload, declared, refused
from api.errors import CATALOGUE
from api.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"
INFO = {
    "title": "AIA Engine API",
    "version": aia_engine.__version__,
    "description": "Tasks and staged agent workflows on Celery, durable in PostgreSQL. "
    "Errors use one envelope; see /errors for the code catalogue.",
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "basicAuth": {"type": "http", "scheme": "basic"},
}
EVERY = ("E001", "E500", "E504")
"""Any operation: a query parameter holding NUL (E001), a failure, the request timeout."""
AUTHENTICATED = ("E401", "E403", "E429", "E503")
"""Behind a bearer token: no or a bad token, the scope, the rate limit, token checks' stores."""
JSON_BODY = ("E400", "E413", "E415", "E001")
IN_PATH = ("E004",)
"""A path parameter holding NUL is not found, on any operation (api/middleware.py)."""


def implied(op: Operation, path: str) -> list[str]:
    """The catalogue codes an operation answers: what it declares and what it implies."""
    codes = [*op.errors, *EVERY]
    if op.scope is not None:
        codes += AUTHENTICATED
    if op.body is not None and not isinstance(op.body, Form | Upload):
        codes += JSON_BODY
    if "{" in path:
        codes += IN_PATH
    return list(dict.fromkeys(codes))


class Generator:
    """Walks routes, turning each declared operation into OpenAPI and collecting the models."""

    def __init__(self) -> None:
        self.models: dict[str, Model] = {}

    def ref(self, model: Model) -> dict[str, Any]:
        known = self.models.setdefault(model.__name__, model)
        if known is not model:
            raise ValueError(f"two models are named {model.__name__}: {known} and {model}")
        return {"$ref": REF.format(model=model.__name__)}

    def json(self, model: Model | tuple[Model, ...]) -> dict[str, Any]:
        if isinstance(model, tuple):
            schema = {"oneOf": [self.ref(m) for m in model]}
        else:
            schema = self.ref(model)
        return {"content": {"application/json": {"schema": schema}}}

    def reply(self, reply: Reply | Model) -> dict[str, Any]:
        if not isinstance(reply, Reply):
            reply = Reply(reply)
        out: dict[str, Any] = {"description": reply.description}
        if reply.media is not None:
            text = {"type": "object" if reply.media == "application/json" else "string"}
            out["content"] = {reply.media: {"schema": text}}
        elif reply.model is not None:
            out.update(self.json(reply.model))
        if reply.headers:
            out["headers"] = dict(reply.headers)
        return out

    def errors(self, codes: Iterable[str]) -> dict[str, Any]:
        by_status: dict[int, list[str]] = {}
        for code in codes:
            by_status.setdefault(CATALOGUE[code].status, []).append(code)
        return {
            str(status): {
                "description": "; ".join(
                    f"{CATALOGUE[c].title} ({c})" for c in sorted(found, key=list(CATALOGUE).index)
                ),
                **self.json(ErrorEnvelope),
            }
            for status, found in sorted(by_status.items())
        }

    def operation(self, route: Route, op: Operation) -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": op.operation_id or op.summary.lower().replace(" ", "_"),
        }
        if op.description:
            out["description"] = op.description
        given = {p["name"] for p in op.params if p["in"] == "path"}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.param_convertors
            if name not in given
        ]
        if params or op.params:
            out["parameters"] = [*params, *op.params]
        if op.security is not None:
            out["security"] = [dict(s) for s in op.security]
        elif op.scope is not None:
            out["security"] = [{"bearerAuth": [op.scope]}]
        if isinstance(op.body, Form):
            schema = op.body.model.model_json_schema(ref_template=REF)
            content = {"application/x-www-form-urlencoded": {"schema": schema}}
            out["requestBody"] = {"required": True, "content": content}
        elif isinstance(op.body, Upload):
            file = {"schema": {"type": "string", "format": "binary"}}
            out["requestBody"] = {
                "required": True,
                "description": op.body.description,
                "content": dict.fromkeys(op.body.media, file),
            }
        elif op.body is not None:
            out["requestBody"] = {"required": True, **self.json(op.body)}
        answers = self.errors(implied(op, route.path))
        answers.update({str(s): self.reply(r) for s, r in op.responses.items()})
        out["responses"] = dict(sorted(answers.items()))
        return out

    def paths(self, routes: Sequence[BaseRoute]) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for route in routes:
            if not isinstance(route, Route) or not route.include_in_schema:
                continue
            methods = sorted((route.methods or set()) - {"HEAD"} - refused(route.endpoint))
            for method in methods:
                op = declared(route.endpoint, method)
                if op is None:
                    raise LookupError(f"{method} {route.path} declares no operation")
                paths.setdefault(route.path, {})[method.lower()] = self.operation(route, op)
        return paths

    def components(self) -> dict[str, Any]:
        schemas: dict[str, Any] = {}
        for name, model in sorted(self.models.items()):
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        return schemas


def build_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    gen = Generator()
    paths = gen.paths(routes)
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {"schemas": gen.components(), "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The document of the API's route table (api/routes.ROUTES, what create_app serves)."""
    from api.routes import ROUTES  # the route modules serve this document: import them late

    return build_document(ROUTES)


def model_for(path: str, method: str, status: int) -> Model | tuple[Model, ...] | None:
    """The declared body model(s) of one answer of the API (for tests that check real ones)."""
    from api.routes import ROUTES

    for route in ROUTES:
        if not isinstance(route, Route) or route.path != path:
            continue
        op = declared(route.endpoint, method) if method in (route.methods or ()) else None
        if op is None:
            continue
        reply = op.responses.get(status)
        if reply is not None:
            return reply.model if isinstance(reply, Reply) else reply
        if status in {CATALOGUE[code].status for code in implied(op, path)}:
            return ErrorEnvelope
    return None
