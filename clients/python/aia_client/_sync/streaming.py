"""`AIAStreamingClient`: the API's event streams as async iterators of updates.

    client = AIAStreamingClient(client_id=..., client_secret=...)
    try:
        async for update in client.tasks.stream_all():
            print(update.task_id, update.status, update.progress)
    finally:
        await client.close()

Each stream reconnects by itself where it left off (every event once, in order; see
`aia_client._async._sse`). Every open stream holds a connection and counts against the
client's limit of open streams on the server (20 by default; a 429 is waited out).
Breaking out of an `async for` leaves the stream open until the iterator is collected:
wrap it in `contextlib.aclosing()` to close it at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType

import httpx

from aia_client._config import Config
from aia_client._stream import IDLE_TIMEOUT, RECONNECT_ATTEMPTS
from aia_client._sync._sse import events
from aia_client._sync._transport import SyncTransport
from aia_client._sync.resources.tasks import SyncTasks
from aia_client.updates import GraphUpdate, TaskUpdate

GRAPH_FILTERS = ("entity_types", "change_types")


class SyncTaskStreams:
    def __init__(self, transport: SyncTransport, reconnect_attempts: int, idle_timeout: float):
        self._transport = transport
        self._tasks = SyncTasks(transport)
        self._reconnect_attempts = reconnect_attempts
        self._idle_timeout = idle_timeout

    def stream_all(
        self, *, start: str = "now", last_event_id: str | None = None
    ) -> Iterator[TaskUpdate]:
        """Every event of every task of this client, as it happens (`start="start"`: the whole
        history first; `last_event_id`: every event after that one). Never ends by itself."""
        return events(
            self._transport,
            "/tasks/stream",
            TaskUpdate.from_event,
            last_event_id=last_event_id,
            start=start,
            reconnect_attempts=self._reconnect_attempts,
            idle_timeout=self._idle_timeout,
        )

    def stream(
        self, task_id: str, *, start: str = "start", last_event_id: str | None = None
    ) -> Iterator[TaskUpdate]:
        """One task's events, from its first, ending after its final one (`tasks.monitor`)."""
        return self._tasks.monitor(
            task_id,
            start=start,
            last_event_id=last_event_id,
            reconnect_attempts=self._reconnect_attempts,
            idle_timeout=self._idle_timeout,
        )


class SyncGraphStreams:
    def __init__(self, transport: SyncTransport, reconnect_attempts: int, idle_timeout: float):
        self._transport = transport
        self._reconnect_attempts = reconnect_attempts
        self._idle_timeout = idle_timeout

    def stream_updates(
        self,
        filters: Mapping[str, Sequence[str]] | None = None,
        *,
        start: str = "now",
        last_event_id: str | None = None,
    ) -> Iterator[GraphUpdate]:
        """This client's knowledge-graph changes as they are made. `filters`:
        `{"entity_types": [...], "change_types": [...]}`, each optional; a change passes when
        its entity type (a relationship's: its source node's) and its change type are listed.
        An unknown change type raises `AIAValidationError`. Never ends by itself."""
        unknown = set(filters or {}) - set(GRAPH_FILTERS)
        if unknown:
            raise ValueError(
                f"unknown filters {sorted(unknown)}: use {' and '.join(GRAPH_FILTERS)}"
            )
        params = {
            name: ",".join([values] if isinstance(values, str) else values)
            for name, values in (filters or {}).items()
            if values
        }
        return events(
            self._transport,
            "/knowledge-graph/stream",
            GraphUpdate.from_event,
            params,
            last_event_id=last_event_id,
            start=start,
            reconnect_attempts=self._reconnect_attempts,
            idle_timeout=self._idle_timeout,
        )


class AIASyncStreamingClient:
    """Streams of task events and knowledge-graph changes. Arguments as `AIAClient`'s, and:

    `reconnect_attempts`: failed reconnections in a row before a stream raises
    `AIAConnectionError` (default 10, with exponential backoff between them);
    `idle_timeout`: seconds without a byte that count as a dropped connection (default 45:
    three of the server's 15-second heartbeats). Streams have no overall timeout."""

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        environment: str = "production",
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_rate_limit_retries: int = 5,
        max_retry_after: float = 120.0,
        max_connections: int = 100,
        scope: str | None = None,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        idle_timeout: float = IDLE_TIMEOUT,
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
        )
        self._transport = SyncTransport(self.config, http=http_client)
        self.tasks = SyncTaskStreams(self._transport, reconnect_attempts, idle_timeout)
        self.knowledge_graph = SyncGraphStreams(self._transport, reconnect_attempts, idle_timeout)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def close(self) -> None:
        """Close every connection (open streams end with an error)."""
        self._transport.close()

    def __enter__(self) -> AIASyncStreamingClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
