"""Human docs served by the API itself: /docs (from the OpenAPI document), /errors and /errors/{code}."""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from aia_engine.errors import AgentCrashed, EngineError, NoSuchEndpoint
from api.contract import Reply, operation
from api.errors import CATALOGUE
from api.openapi import build_document

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:1rem;overflow:auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
)


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def document(request: Request) -> dict[str, Any]:
    """The document of the app's own route table, built once per app."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = build_document(request.app.routes)
    doc: dict[str, Any] = state.openapi
    return doc


HTML = Reply(description="An HTML page", media="text/html")


@operation(
    "Get OpenAPI document",
    tag="docs",
    responses={200: Reply(description="This document", media="application/json")},
)
async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document(request))


@operation("Get API docs", tag="docs", responses={200: HTML})
async def docs(request: Request) -> HTMLResponse:
    doc = document(request)
    parts = [
        f"<h1>{html.escape(doc['info']['title'])} {html.escape(doc['info']['version'])}</h1>",
        f"<p>{html.escape(doc['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Error codes: <a href='/errors'>/errors</a>.</p>",
    ]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            scope = (
                ", ".join(s for sec in op.get("security", []) for v in sec.values() for s in v)
                or "none"
            )
            statuses = ", ".join(sorted(op["responses"]))
            parts.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op['summary'])}. Scope: <code>{html.escape(scope)}</code>. "
                f"Responses: {statuses}.</p>"
            )
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                parts.append(
                    f"<details><summary>Request body ({html.escape(media)})</summary><pre>"
                    f"{html.escape(json.dumps(content['schema'], indent=2))}</pre></details>"
                )
    return page("AIA Engine API", "\n".join(parts))


FOUND_IN = {
    "both": "responses and stage errors",
    "response": "responses",
    "stage": "stage and task errors",
}


ENVELOPE_SHAPE = (
    '<p>Every error body is <code>{"error": {type, message, code, details, timestamp, request_id, '
    'documentation_url}, "detail": message}</code>; quote the request_id when you contact '
    "support.</p>"
)
STAGE_ERROR_SHAPE = (
    "<p>A stage's <code>error</code> is <code>{type, code, message, details}</code>; a failed "
    "task's adds <code>stage</code>, <code>failed_stages</code> and <code>skipped_stages</code>.</p>"
)


def _status(entry: type[EngineError]) -> str:
    return "—" if entry.where == "stage" else str(entry.status)


@operation("Get error codes", tag="docs", responses={200: HTML})
async def error_index(_request: Request) -> HTMLResponse:
    rows = "".join(
        f"<tr><td><a href='/errors/{e.code}'>{e.code}</a></td><td>{_status(e)}</td>"
        f"<td>{e.type}</td><td>{html.escape(e.title)}</td><td>{FOUND_IN[e.where]}</td></tr>"
        for e in CATALOGUE.values()
    )
    return page(
        "Error codes",
        f"<h1>Error codes</h1><table><tr><th>code</th><th>status</th><th>type</th>"
        f"<th>meaning</th><th>found in</th></tr>{rows}</table>",
    )


@operation("Get error code", tag="docs", responses={200: HTML}, errors=("E404",))
async def error_page(request: Request) -> HTMLResponse:
    entry = CATALOGUE.get(request.path_params["code"])
    if entry is None:
        raise NoSuchEndpoint(f"no error code {request.path_params['code']!r}; see /errors")
    if entry.where == "stage":
        found = "Recorded in a stage's (and its task's) <code>error</code>" + (
            ", type: the agent's exception class."
            if entry.code == AgentCrashed.code
            else f", type <code>{entry.type}</code>."
        )
        shape = STAGE_ERROR_SHAPE
    else:
        found = f"HTTP status <b>{entry.status}</b>, type <code>{entry.type}</code>."
        shape = ENVELOPE_SHAPE
    return page(
        f"{entry.code} {entry.title}",
        f"<h1>{entry.code}: {html.escape(entry.title)}</h1><p>{found}</p>"
        f"<p>{html.escape(entry.description)}</p>{shape}<p><a href='/errors'>All codes</a></p>",
    )


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/errors", error_index, methods=["GET"]),
    Route("/errors/{code}", error_page, methods=["GET"]),
]
