"""The document is generated from the route table: every route is in it, a route without a
declaration stops the generation, and the declared codes come from the catalogue."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api import schemas
from api.contract import declared, operation, refused
from api.errors import ANSWERED, CATALOGUE
from api.openapi import build_document, openapi_document
from api.routes import ROUTES


def test_every_route_is_in_the_document() -> None:
    paths = openapi_document()["paths"]
    for route in ROUTES:
        assert isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"} - refused(route.endpoint):
            assert method.lower() in paths.get(route.path, {}), (method, route.path)


def test_a_route_without_a_declaration_stops_the_generation() -> None:
    async def undocumented(_request: Request) -> JSONResponse:
        return JSONResponse({})

    with pytest.raises(LookupError, match="GET /nowhere declares no operation"):
        build_document([*ROUTES, Route("/nowhere", undocumented, methods=["GET"])])


def test_a_declared_route_is_generated_from_its_models() -> None:
    @operation("Get quotas", tag="limits", scope="read", responses={200: schemas.Quotas})
    async def quotas(_request: Request) -> JSONResponse:
        return JSONResponse({})

    doc = build_document([Route("/q/{client}", quotas, methods=["GET"])])
    op = doc["paths"]["/q/{client}"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Quotas"
    }
    assert op["parameters"] == [
        {"name": "client", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    # Implied: NUL in a query value, failure, timeout; the token's; NUL in the path.
    assert sorted(op["responses"]) == [
        "200",
        "401",
        "403",
        "404",
        "422",
        "429",
        "500",
        "503",
        "504",
    ]
    assert op["security"] == [{"bearerAuth": ["read"]}]
    assert set(doc["components"]["schemas"]) == {
        "Quotas",
        "RequestQuota",
        "ActiveTaskQuota",
        "ErrorEnvelope",
        "ErrorBody",
    }


def test_declared_error_codes_are_answerable_codes_of_the_catalogue() -> None:
    for route in ROUTES:
        assert isinstance(route, Route)
        for method in route.methods or ():
            op = declared(route.endpoint, method)
            if op is not None:
                assert set(op.errors) <= set(ANSWERED), (method, route.path)


def test_error_responses_name_their_codes() -> None:
    responses = openapi_document()["paths"]["/tasks/{task_id}"]["get"]["responses"]
    assert responses["404"]["description"] == f"{CATALOGUE['E004'].title} (E004)"
    assert responses["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
