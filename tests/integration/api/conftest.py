"""A live uvicorn server running the API against the test PostgreSQL and Redis."""

from __future__ import annotations

import threading
import time
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
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def wait_healthy(api: LiveApi, timeout: float = 30) -> dict[str, Any]:
    """Until `/health` answers 200: its background checks have seen a worker started just now."""
    deadline = time.monotonic() + timeout
    with api.client() as http:
        while (r := http.get("/health")).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.05)
    body: dict[str, Any] = r.json()
    return body


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
