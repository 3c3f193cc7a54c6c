"""`AIAClient`: the whole API behind one object, one connection pool and one token.

async with AIAClient(client_id=..., client_secret=..., environment="production") as client:
    task = await client.tasks.submit(task_type="data_analysis", description="...")
    final = await client.tasks.wait(task.task_id, timeout=300)
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import httpx

from aia_client._async._transport import AsyncTransport
from aia_client._async.resources.business_intelligence import AsyncBusinessIntelligence
from aia_client._async.resources.datasets import AsyncDatasets
from aia_client._async.resources.knowledge_graph import AsyncKnowledgeGraph
from aia_client._async.resources.system import AsyncHealth, AsyncMetrics, AsyncMonitoring
from aia_client._async.resources.tasks import AsyncTasks
from aia_client._async.resources.webhooks import AsyncWebhooks
from aia_client._config import Config


class AIAClient:
    """The async client. Credentials default to `AIA_CLIENT_ID`/`AIA_CLIENT_SECRET`; the URL
    to `base_url=`, then `AIA_<ENVIRONMENT>_BASE_URL`, then `AIA_BASE_URL` (docs/python-sdk.md).

    `timeout`: seconds for each connect/read/write; `max_retries`: retries after a network
    error or 502/503/504 when retrying is safe; `max_rate_limit_retries`: 429s waited out
    (None: as many as it takes, for scripts that must get through a quota; `cancel()` stops
    them); `max_retry_after`: a 429 asking for a longer wait is raised instead.
    `on_retry(reason, seconds)`: told of each wait to retry before it starts (a progress line
    can show "waiting 3 s: rate limited (E011)").
    `http_client`: your own `httpx.AsyncClient` (its base URL must be the API's)."""

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        environment: str = "production",
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_rate_limit_retries: int | None = 5,
        max_retry_after: float = 120.0,
        max_connections: int = 100,
        scope: str | None = None,
        on_retry: Callable[[str, float], None] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = Config.build(
            client_id,
            client_secret,
            environment,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_retries=max_rate_limit_retries,
            max_retry_after=max_retry_after,
            max_connections=max_connections,
            scope=scope,
            on_retry=on_retry,
        )
        self._transport = AsyncTransport(self.config, http=http_client)
        self.health = AsyncHealth(self._transport)
        self.tasks = AsyncTasks(self._transport)
        self.knowledge_graph = AsyncKnowledgeGraph(self._transport)
        self.business_intelligence = AsyncBusinessIntelligence(self._transport)
        self.webhooks = AsyncWebhooks(self._transport)
        self.metrics = AsyncMetrics(self._transport)
        self.monitoring = AsyncMonitoring(self._transport)
        self.datasets = AsyncDatasets(self._transport)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def cancel(self) -> None:
        """Stop every request of this client: a wait to retry (backoff, `Retry-After`) ends at
        once with `AIACancelledError`, and no request is sent after. For the sync client it
        may be called from any thread (e.g. the main thread on Ctrl-C while worker threads
        wait); for the async one, from the event loop's thread. Requests already on the wire
        finish as they would."""
        self._transport.cancel()

    async def close(self) -> None:
        """Close the connection pool (the client cannot be used after)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AIAClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
