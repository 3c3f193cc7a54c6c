"""Fixtures for the SDK's tests: the API's live server and clients, and SDK clients of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import uvicorn

from aia_engine.embedded import free_port
from aia_engine.events.pump import EventPump
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import authed, live_api, make_client  # noqa: F401
from tests.integration.conftest import Services, stop_process
from tests.integration.sdk.api_process import ApiProcess

# -- streams (tests/integration/sdk/test_streams.py) -------------------------------------------


class RestartableApi:
    """A live API on a port of its own that a test can stop and start again (a server
    restart, as a client sees it: its connections drop, then the same URL answers again)."""

    def __init__(self, services: Services, **settings: Any) -> None:
        self.settings = services.settings.model_copy(update=settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.restarts = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,  # open streams do not end by themselves
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, daemon=True)
        self._thread.start()
        wait_until(lambda: server.started, "uvicorn to start", timeout=20, interval=0.02)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(15)
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


@pytest.fixture(scope="module")
def stream_api(services: Services, worker: Any) -> Iterator[RestartableApi]:
    """A restartable API whose streams beat every second, a worker, and the event pump."""
    api = RestartableApi(services, sse_heartbeat_s=1.0)
    api.start()
    pump_redis = redis.Redis.from_url(services.redis_url)
    pump = EventPump(services.sessions, pump_redis, lambda _ids: None)
    pump_thread, stop = pump.start()
    yield api
    stop.set()
    pump_thread.join(10)
    pump_redis.close()
    api.stop()


# -- harness (tests/integration/sdk/api_process.py, proxy.py) ----------------------------------


@pytest.fixture(scope="module")
def api_process(services: Services, worker: Any) -> Iterator[ApiProcess]:
    """The API as its own process (restart() = kill -9, then the same port again), streams
    beating every second, a worker, and the event pump (in this process, as stream_api)."""
    pump_redis = redis.Redis.from_url(services.redis_url)
    pump = EventPump(services.sessions, pump_redis, lambda _ids: None)
    pump_thread, stop = pump.start()
    with ApiProcess(services, "sdk-api", AIA_SSE_HEARTBEAT_S="1") as api:
        yield api
    stop.set()
    pump_thread.join(10)
    pump_redis.close()


@pytest.fixture(scope="module")
def embedder(start_worker: Any) -> Iterator[Any]:
    """A worker on the embeddings queue: written entities become searchable."""
    proc = start_worker("sdk-embedder", queues="aia.embeddings", concurrency=1)
    yield proc
    stop_process(proc)
