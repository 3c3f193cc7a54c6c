"""Per-client datasets: upload (streamed), list, get, delete. See docs/datasets.md.

An upload's body is read as it arrives, by the thread that parses it and COPYs the rows into
PostgreSQL: the handler hands it the request's chunks one at a time from the event loop, so
the body is never held whole. Uploads run on threads and connections of their own (a few per
process, one per client: api/dataset_uploads.py), never in the request threads' pool, and stop
when their request ends. A delete answers at once; the rows go in the background.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.datasets import store
from aia_engine.datasets.files import MEDIA_TYPES, too_large
from aia_engine.datasets.uploads import store_stream
from aia_engine.errors import InvalidRequest, UnsupportedMediaType
from api import schemas
from api.auth import require
from api.contract import Reply, Upload, operation, query
from api.dataset_uploads import BodyFeed, UploadSlots
from api.deps import Resources, in_thread, resources
from api.replies import reply

_TAG = "datasets"


async def _store(res: Resources, request: Request, owner: str, **kwargs: Any) -> Any:
    """Run the upload on a thread of the upload limiter, holding one of `res.dataset_uploads`'
    slots until that thread ends; the thread stops when this request does."""
    slots: UploadSlots = res.dataset_uploads
    slots.take(owner)
    feed = BodyFeed(request.stream().__aiter__(), res.settings.dataset_upload_idle_s)
    state = {"started": False, "released": False}
    guard = threading.Lock()

    def release() -> None:
        with guard:
            if not state["released"]:
                state["released"] = True
                slots.release(owner)

    def work() -> Any:
        with guard:
            if state["released"]:  # the request ended before the thread began
                return None
            state["started"] = True
        try:
            return store_stream(res.sessions, chunks=feed.chunks(), **kwargs)
        finally:
            release()

    try:
        return await anyio.to_thread.run_sync(
            work, limiter=res.dataset_upload_threads, abandon_on_cancel=True
        )
    finally:
        feed.abort()  # a no-op when the thread is done; else it stops at its next chunk
        with guard:
            begun = state["started"]
        if not begun:
            release()


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidRequest(
            f"{name} must be true or false, not {value[:50]!r}",
            field=name,
            issue="not a boolean",
            provided_value=value[:50],
        )
    return value in ("true", "1")


@operation(
    "Upload dataset",
    tag=_TAG,
    scope="write",
    responses={201: schemas.DatasetView},
    body=Upload(
        tuple(MEDIA_TYPES),
        "The file: CSV with a header row, JSON Lines, or a JSON array of objects.",
    ),
    errors=("E001", "E009", "E064", "E065", "E066", "E408", "E415", "E429", "E503"),
    params=(
        {
            **query("name", str, "the dataset's name: 1-100 letters, digits, '_', '.' or '-'"),
            "required": True,
        },
        query("replace", bool, "replace the records of your dataset of that name", False),
    ),
    description="The body is the file: text/csv (a header row), application/x-ndjson (JSON "
    'Lines) or application/json (an array of objects, or {"records": [...]}). It is parsed '
    "as it streams in and stored in one transaction: any bad record, a limit passed "
    "(AIA_DATASET_MAX_BYTES, AIA_DATASET_MAX_RECORDS, AIA_DATASET_MAX_RECORD_BYTES: 413), a "
    "pause in the body past AIA_DATASET_UPLOAD_IDLE_S (408) or a cut upload stores nothing. "
    "409 when you already have a dataset of that name (send replace=true) or an upload, "
    "replace or delete of it is running; 403 (E066) for replace=true on a shared dataset's "
    "name. One upload per client (429) and AIA_DATASET_UPLOAD_CONCURRENCY per API process "
    "(503) run at once, both with Retry-After.",
)
async def upload(request: Request) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    name = request.query_params.get("name")
    if not name:
        raise InvalidRequest(
            "name the dataset: POST /datasets?name=NAME", field="name", issue="missing"
        )
    replace = _flag(request, "replace")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = MEDIA_TYPES.get(content_type)
    if fmt is None:
        raise UnsupportedMediaType(
            f"content type {content_type or 'none'!r} is not a dataset format; send text/csv, "
            "application/x-ndjson or application/json",
            content_type=content_type,
        )
    declared = request.headers.get("content-length", "")
    limit = res.settings.dataset_max_bytes
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    made = await _store(
        res,
        request,
        principal.client_id,
        name=name,
        fmt=fmt,
        settings=res.settings,
        client_id=principal.client_id,
        replace=replace,
    )
    return reply(request, made, status=201)


@operation(
    "List datasets",
    tag=_TAG,
    scope="read",
    responses={200: schemas.DatasetList},
    description="Your datasets, then the shared ones (read-only), then the shipped samples "
    "(read-only, named sample:NAME). Never their records.",
)
async def list_all(request: Request) -> Response:
    principal = await require(request, "read")
    found = await in_thread(store.list_for_client, resources(request).sessions, principal.client_id)
    return reply(request, {"datasets": found})


@operation(
    "Get dataset",
    tag=_TAG,
    method="GET",
    scope="read",
    responses={200: schemas.DatasetView},
    description="By `ds_` id or by name (yours first, then a shared one, then a sample): its "
    "row count and schema (columns in order, their types and nulls).",
)
@operation(
    "Delete dataset",
    tag=_TAG,
    method="DELETE",
    scope="write",
    responses={204: Reply(description="Deleted")},
    errors=("E009", "E066"),
    description="Your own datasets only: a shared dataset or a sample answers 403 (E066); 409 "
    "while an upload or replace of it runs. It is gone for you at once (its name free again); "
    "its rows are removed in the background. Tasks naming it that have not run yet will fail.",
)
async def one(request: Request) -> Response:
    ref = request.path_params["ref"]
    sessions = resources(request).sessions
    if request.method == "DELETE":
        principal = await require(request, "write")
        await in_thread(store.delete_for_client, sessions, ref, principal.client_id)
        purge = resources(request).dataset_purge
        if purge is not None:
            purge.kick()
        return Response(status_code=204)
    principal = await require(request, "read")
    return reply(request, await in_thread(store.get_for_client, sessions, ref, principal.client_id))


routes = [
    Route("/datasets", list_all, methods=["GET"]),
    Route("/datasets", upload, methods=["POST"]),
    Route("/datasets/{ref}", one, methods=["GET", "DELETE"]),
]
