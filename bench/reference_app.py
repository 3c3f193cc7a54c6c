"""Reference endpoints for the API benchmark, on the same Redis and PostgreSQL as the engine.

/bare    only `apply_async` of a no-op (in the thread pool, so the event loop never blocks)
/insert  one psycopg INSERT of the JSON body, then `apply_async`
"""

from __future__ import annotations

import json
import threading
import uuid

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aia_engine.settings import get_settings
from bench.raw_app import noop
from workers.app import use_redis

_local = threading.local()


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        url = (
            get_settings()
            .require_database_url()
            .replace("postgresql+psycopg://", "postgresql://", 1)
        )
        conn = _local.conn = psycopg.connect(url, autocommit=True)
    return conn


def _insert_and_publish(body: bytes) -> str:
    task_id = uuid.uuid4().hex
    _conn().execute(
        "INSERT INTO bench_reference (id, body) VALUES (%s, %s)", (task_id, body.decode())
    )
    noop.apply_async()
    return task_id


async def bare(_request: Request) -> JSONResponse:
    await run_in_threadpool(noop.apply_async)
    return JSONResponse({"status": "accepted"}, status_code=202)


async def insert(request: Request) -> JSONResponse:
    body = await request.body()
    json.loads(body)
    task_id = await run_in_threadpool(_insert_and_publish, body)
    return JSONResponse({"task_id": task_id, "status": "accepted"}, status_code=202)


def create() -> Starlette:
    use_redis(get_settings().require_redis_url())
    with psycopg.connect(
        get_settings().require_database_url().replace("+psycopg", ""), autocommit=True
    ) as c:
        c.execute(
            "CREATE TABLE IF NOT EXISTS bench_reference (id text PRIMARY KEY, body jsonb NOT NULL)"
        )
    return Starlette(
        routes=[Route("/bare", bare, methods=["POST"]), Route("/insert", insert, methods=["POST"])]
    )
