"""The error catalogue: one code per meaning, stage codes apart from response codes, and the
API's envelope, /errors pages and OpenAPI descriptions all read from it."""

from __future__ import annotations

import ast
import asyncio
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import aia_engine
import aia_engine.errors as errors
import api
import workers
from aia_engine.errors import (
    AgentCrashed,
    EngineError,
    PayloadTooLarge,
    RateLimitExceeded,
    StageSkipped,
    catalogue,
)
from api.errors import ANSWERED, CATALOGUE, EXCEPTION_HANDLERS, status_summaries
from api.routes.docs import routes as docs_routes

ROOT = Path(aia_engine.__file__).parent.parent

# What every HTTP error answered before the catalogue moved (code: status, type): the envelope's
# contract, which clients rely on. No code may change its status or type, none may disappear,
# and no new code is answered without adding it here.
ANSWERED_BEFORE = {
    "E001": (422, "ValidationError"),
    "E002": (422, "ValidationError"),
    "E003": (422, "ValidationError"),
    "E004": (404, "NotFound"),
    "E005": (422, "ValidationError"),
    "E007": (422, "ValidationError"),
    "E009": (409, "Conflict"),
    "E012": (429, "TooManyStreams"),
    "E013": (429, "QuotaExceeded"),
    "E045": (422, "ValidationError"),
    "E046": (422, "ValidationError"),
    "E050": (422, "ValidationError"),
    "E035": (422, "ValidationError"),
    "E036": (422, "ValidationError"),
    "E037": (409, "Conflict"),
    "E038": (422, "ValidationError"),
    "E030": (422, "CypherSyntaxError"),
    "E031": (422, "UnsupportedCypher"),
    "E032": (422, "InvalidQueryParameters"),
    "E033": (422, "QueryLimitExceeded"),
    "E034": (422, "QueryFailed"),
    "E062": (422, "ValidationError"),
    "E064": (422, "ValidationError"),
    "E065": (413, "PayloadTooLarge"),
    "E066": (403, "Forbidden"),
    "E055": (503, "EmbeddingModelUnavailable"),
    "E056": (503, "EmbeddingFailed"),
    "E068": (422, "ValidationError"),
    "E072": (422, "ValidationError"),
    "E073": (429, "CycleQuotaExceeded"),
    "E074": (422, "ValidationError"),
    "E400": (400, "BadRequest"),
    "E401": (401, "Unauthorized"),
    "E403": (403, "Forbidden"),
    "E404": (404, "NotFound"),
    "E405": (405, "MethodNotAllowed"),
    "E408": (408, "RequestTimeout"),
    "E413": (413, "PayloadTooLarge"),
    "E415": (415, "UnsupportedMediaType"),
    "E429": (429, "RateLimitExceeded"),
    "E500": (500, "InternalServerError"),
    "E503": (503, "ServiceUnavailable"),
    "E504": (504, "GatewayTimeout"),
}


def all_error_classes() -> Iterator[type[EngineError]]:
    """EngineError and every subclass in the code base (importing every module first)."""
    for package in (aia_engine, api, workers):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations" not in module.name and not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    seen, stack = [], [EngineError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return iter(seen)


def test_no_two_classes_share_a_code() -> None:
    owners: dict[str, list[str]] = {}
    for cls in all_error_classes():
        if "code" in vars(cls) or cls is EngineError:
            owners.setdefault(cls.code, []).append(cls.__qualname__)
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert not shared
    assert sorted(owners) == sorted(CATALOGUE)


def test_every_error_class_has_its_code_in_the_catalogue() -> None:
    for cls in all_error_classes():
        entry = CATALOGUE.get(cls.code)
        assert entry is not None, f"{cls.__qualname__}'s {cls.code} is not in the catalogue"
        assert issubclass(cls, entry) and entry.title and entry.description


def test_a_second_class_with_a_taken_code_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="E013 is already QuotaExceeded's"):

        class Crash(EngineError):
            code = "E013"
            title = description = "x"

    with pytest.raises(TypeError, match=r"declare error codes in aia_engine\.errors"):

        class Elsewhere(EngineError):
            code = "E999"
            title = description = "x"

    assert "E999" not in catalogue()


def _stage_writers() -> list[Path]:
    """The modules that write a stage's or task's error, wherever the stage lifecycle lives."""
    core = ROOT / "aia_engine"
    found = [
        *core.glob("stage*.py"),
        *core.glob("stages/**/*.py"),
        *core.glob("tasks/settle.py"),
        *core.glob("reconcile*.py"),
        *core.glob("storable.py"),
        *core.glob("progress.py"),
        *core.glob("agents/**/*.py"),
        *(ROOT / "workers").glob("**/*.py"),
    ]
    return sorted(set(found))


def _codes_written(path: Path) -> Iterator[tuple[str, int]]:
    """(code, line) of every code `path` can store: a `"code": ...` in a dict display, an error
    class built (`X(...).to_dict()`) or raised (agents raise what their stage records)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    yield from ((code, node.lineno) for code in _resolve(value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            cls = getattr(errors, node.func.id, None)
            if isinstance(cls, type) and issubclass(cls, EngineError):
                yield cls.code, node.lineno


def _resolve(value: ast.expr) -> Iterator[str]:
    """The codes a `"code": value` can hold: a literal, `SomeError.code`, or (when it passes on
    another error's code, as storable_error does) the literals it falls back to."""
    for node in ast.walk(value):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"E\d{3}", node.value):
                yield node.value
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "code"
            and isinstance(node.value, ast.Name)
            and hasattr(errors, node.value.id)
        ):
            yield str(getattr(errors, node.value.id).code)


def test_every_code_a_stage_can_record_is_a_catalogued_non_response_code() -> None:
    written: dict[str, list[str]] = {}
    for path in _stage_writers():
        for code, line in _codes_written(path):
            written.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{line}")
    for code, where in written.items():
        entry = CATALOGUE.get(code)
        assert entry is not None, f"{code} (written at {where}) is not in the catalogue"
        assert entry.where != "response", (
            f"{code} (written at {where}) is {entry.__name__}, a code only HTTP responses carry"
        )
    # The scan sees the lifecycle's own codes, so it is not looking in the wrong place.
    assert {"E010", "E011", "E020", "E021", "E022", "E023"} <= set(written)


def test_stage_codes_are_apart_from_response_codes() -> None:
    stage = {c for c, cls in CATALOGUE.items() if cls.where == "stage"}
    assert stage == {"E010", "E011", "E020", "E021", "E022", "E023", "E047", "E048", "E063", "E067"}
    assert not stage & set(ANSWERED)
    assert AgentCrashed.code == "E022" and StageSkipped.code == "E023"


def test_answered_codes_keep_their_status_and_type() -> None:
    assert {c: (e.status, e.type) for c, e in ANSWERED.items()} == ANSWERED_BEFORE


def test_openapi_error_descriptions_name_every_answered_code() -> None:
    summaries = status_summaries()
    for code, entry in ANSWERED.items():
        assert f"({code})" in summaries[str(entry.status)]
    assert not any(f"({code})" in text for text in summaries.values() for code in ("E022",))


class Client:
    """GET on an ASGI app, synchronously."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def one() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.get(path, headers=headers)

        return asyncio.run(one())


@pytest.fixture
def client() -> Client:
    async def too_big(_request: Request) -> None:
        raise PayloadTooLarge("request body exceeds 10 bytes", limit_bytes=10)

    async def limited(_request: Request) -> None:
        raise RateLimitExceeded("slow down", retry_after_s=3).with_headers({"Retry-After": "3"})

    async def crashed(_request: Request) -> None:
        raise AgentCrashed("never answered as itself")

    app = Starlette(
        routes=[
            *docs_routes,
            Route("/too-big", too_big),
            Route("/limited", limited),
            Route("/crashed", crashed),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return Client(app)


def test_errors_page_lists_exactly_the_catalogue(client: Client) -> None:
    page = client.get("/errors")
    assert page.status_code == 200
    assert re.findall(r"<a href='/errors/(E\d{3})'>", page.text) == list(CATALOGUE)
    for code, entry in CATALOGUE.items():
        one = client.get(f"/errors/{code}")
        assert one.status_code == 200 and entry.title in one.text
    missing = client.get("/errors/E999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "E404"


def test_edge_errors_keep_the_envelope(client: Client) -> None:
    answer = client.get("/too-big", headers={"X-Request-ID": "r1"})
    body = answer.json()
    assert answer.status_code == 413 and set(body) == {"error", "detail"}
    assert set(body["error"]) == {
        "type",
        "message",
        "code",
        "details",
        "timestamp",
        "request_id",
        "documentation_url",
    }
    assert body["error"]["code"] == "E413" and body["error"]["type"] == "PayloadTooLarge"
    assert body["error"]["details"] == {"limit_bytes": 10}
    assert body["error"]["documentation_url"].endswith("/errors/E413")
    assert body["detail"] == "request body exceeds 10 bytes"
    limited = client.get("/limited")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json()["error"]["code"] == "E429"
    # A stage-only error raised inside a request answers as its status's domain error.
    crashed = client.get("/crashed")
    assert crashed.status_code == 500 and crashed.json()["error"]["code"] == "E500"
