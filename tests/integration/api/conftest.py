"""A live uvicorn server running the API against the test PostgreSQL and Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from aia_engine.auth.clients import create_client
from aia_engine.embedded import free_port
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.conftest import Services


@dataclass
class LiveApi:
    url: str
    app: Starlette
    server: uvicorn.Server

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


def serve(app: Starlette) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn to start", timeout=20, interval=0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def wait_healthy(api: LiveApi, timeout: float = 30) -> dict[str, Any]:
    """Until `/health` answers 200: its background checks have seen a worker started just now."""
    with api.client() as http:
        r = wait_until(
            lambda: (r := http.get("/health")).status_code == 200 and r,
            "/health to answer 200",
            timeout=timeout,
        )
    body: dict[str, Any] = r.json()
    return body


ENDED = ("completed", "failed", "cancelled")


def wait_task(
    http: httpx.Client,
    task_id: str,
    statuses: tuple[str, ...] = ENDED,
    timeout: float = 60,
) -> dict[str, Any]:
    """Until GET /tasks/{task_id} shows one of `statuses`; that view."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        last.clear()
        last.update(http.get(f"/tasks/{task_id}").json())
        return dict(last) if last.get("status") in statuses else None

    return wait_until(
        reached, lambda: f"task {task_id} to be {'/'.join(statuses)}: {last}", timeout=timeout
    )


# Names the tests' webhook URLs use; anything else "does not resolve". Never asks DNS, so no
# packet leaves the machine.
OFFLINE_DNS = {"hooks.example": ["93.184.216.34"], "internal.example": ["10.1.2.3"]}
ALLOWED_RECEIVER = "127.0.0.1:9999"


def offline_resolver(host: str, _port: int) -> list[str]:
    return OFFLINE_DNS.get(host, [])


@pytest.fixture(scope="session")
def live_api(services: Services) -> Iterator[LiveApi]:
    settings = services.settings.model_copy(update={"webhook_allow": [ALLOWED_RECEIVER]})
    app = create_app(settings, resolver=offline_resolver)
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


@dataclass
class Credentials:
    client_id: str
    client_secret: str

    def form(self, **extra: str) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret, **extra}


@pytest.fixture(scope="session")
def make_client(services: Services) -> Callable[..., Credentials]:
    def make(
        name: str = "test client", scopes: str = "read write", tier: str = "developer"
    ) -> Credentials:
        made = create_client(services.sessions, name=name, tier=tier, scopes=scopes)
        return Credentials(made.client_id, made.client_secret)

    return make


def token_for(api: LiveApi, creds: Credentials, scope: str | None = None) -> str:
    data = creds.form(grant_type="client_credentials", **({"scope": scope} if scope else {}))
    with api.client() as http:
        response = http.post("/auth/token", data=data)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
def authed(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> Callable[..., httpx.Client]:
    """An httpx client with a bearer token for a new API client with the given scopes."""

    def make(scopes: str = "read write", creds: Credentials | None = None) -> httpx.Client:
        creds = creds or make_client(scopes=scopes)
        return live_api.client(headers={"Authorization": f"Bearer {token_for(live_api, creds)}"})

    return make
