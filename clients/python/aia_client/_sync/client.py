"""`AIAClient`: the whole API behind one object, one connection pool and one token.

async with AIAClient(client_id=..., client_secret=..., environment="production") as client:
    task = await client.tasks.submit(task_type="data_analysis", description="...")
    final = await client.tasks.wait(task.task_id, timeout=300)
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import httpx

from aia_client._config import Config
from aia_client._sync._transport import SyncTransport
from aia_client._sync.resources.business_intelligence import SyncBusinessIntelligence
from aia_client._sync.resources.datasets import SyncDatasets
from aia_client._sync.resources.knowledge_graph import SyncKnowledgeGraph
from aia_client._sync.resources.system import SyncHealth, SyncMetrics, SyncMonitoring
from aia_client._sync.resources.tasks import SyncTasks
from aia_client._sync.resources.webhooks import SyncWebhooks


class AIASyncClient:
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
        http_client: httpx.Client | None = None,
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
        self._transport = SyncTransport(self.config, http=http_client)
        self.health = SyncHealth(self._transport)
        self.tasks = SyncTasks(self._transport)
        self.knowledge_graph = SyncKnowledgeGraph(self._transport)
        self.business_intelligence = SyncBusinessIntelligence(self._transport)
        self.webhooks = SyncWebhooks(self._transport)
        self.metrics = SyncMetrics(self._transport)
        self.monitoring = SyncMonitoring(self._transport)
        self.datasets = SyncDatasets(self._transport)

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

    def close(self) -> None:
        """Close the connection pool (the client cannot be used after)."""
        self._transport.close()

    def __enter__(self) -> AIASyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
