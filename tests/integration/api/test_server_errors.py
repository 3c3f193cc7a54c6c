"""500 and 504 in the envelope, with no traceback, on the real app with two extra routes."""

from __future__ import annotations

import asyncio

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.app import create_app
from tests.integration.api.conftest import serve
from tests.integration.conftest import Services


async def boom(_request: Request) -> JSONResponse:
    raise RuntimeError("secret internal detail /etc/passwd")


async def slow(_request: Request) -> JSONResponse:
    await asyncio.sleep(2)
    return JSONResponse({})


def test_unexpected_error_is_a_500_envelope_without_traceback(services: Services) -> None:
    app = create_app(services.settings.model_copy(update={"request_timeout_s": 0.5}))
    app.add_route("/boom", boom)
    app.add_route("/slow", slow)
    server, thread, url = serve(app)
    try:
        # Separate connections: uvicorn closes a connection after an application error.
        crashed = httpx.get(f"{url}/boom")
        timed_out = httpx.get(f"{url}/slow")
    finally:
        server.should_exit = True
        thread.join(10)
    assert crashed.status_code == 500
    err = crashed.json()["error"]
    assert err["code"] == "E500" and err["request_id"] == crashed.headers["x-request-id"]
    assert "secret internal detail" not in crashed.text and "Traceback" not in crashed.text
    assert timed_out.status_code == 504 and timed_out.json()["error"]["code"] == "E504"


def test_health_is_503_naming_the_service_that_is_down(services: Services) -> None:
    import redis

    from aia_engine.embedded import free_port

    # A Redis client aimed at a port where nothing listens: a real outage, not a fake.
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    server, thread, url = serve(create_app(services.settings, redis_client=dead))
    try:
        r = httpx.get(f"{url}/health", timeout=10)
    finally:
        server.should_exit = True
        thread.join(10)
    body = r.json()
    assert r.status_code == 503 and body["status"] == "degraded"
    assert body["services"]["redis"].startswith("unhealthy") and "redis" in body["failing_services"]
    assert body["services"]["database"] == "healthy"
