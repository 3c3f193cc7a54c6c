"""What keeps dataset uploads from tying up the API: a few upload slots per process (and per
client), on threads and database connections of their own, and the body fed to the upload's
thread a piece at a time with a deadline for each piece. When the request ends early (the
upload timeout's 504, the client gone), `BodyFeed.abort` stops the thread at its next piece,
and its transaction rolls back."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.from_thread

from aia_engine.errors import EngineError, RateLimitExceeded, TransientError, UploadStalled

RETRY_AFTER_S = 30


class UploadAborted(Exception):
    """The request that fed the upload ended (timeout, disconnect): stop, store nothing."""


class UploadSlots:
    """Uploads running in this process: at most `total`, and `per_client` for one client.
    `take` answers at once (never waits); `release` when the upload's thread ends."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._lock = threading.Lock()
        self._running = 0
        self._by_client: dict[str, int] = {}

    def take(self, client_id: str) -> None:
        with self._lock:
            mine = self._by_client.get(client_id, 0)
            if mine >= self.per_client:
                refused: EngineError = RateLimitExceeded(
                    f"this client already runs {mine} dataset upload(s), as many as it may at "
                    "once (AIA_DATASET_UPLOAD_PER_CLIENT); retry when it is done",
                    limit=self.per_client,
                    setting="AIA_DATASET_UPLOAD_PER_CLIENT",
                )
            elif self._running >= self.total:
                refused = TransientError(
                    f"the API runs {self._running} dataset uploads, as many as it takes at once "
                    "(AIA_DATASET_UPLOAD_CONCURRENCY); retry shortly",
                    limit=self.total,
                    setting="AIA_DATASET_UPLOAD_CONCURRENCY",
                )
            else:
                self._running += 1
                self._by_client[client_id] = mine + 1
                return
        refused.headers["Retry-After"] = str(RETRY_AFTER_S)
        raise refused

    def release(self, client_id: str) -> None:
        with self._lock:
            self._running -= 1
            left = self._by_client.pop(client_id, 1) - 1
            if left:
                self._by_client[client_id] = left

    @property
    def running(self) -> int:
        return self._running


class BodyFeed:
    """A request body's chunks for a worker thread, each pulled from the event loop with a
    deadline of `idle_s` (UploadStalled, 408, past it)."""

    def __init__(self, body: AsyncIterator[bytes], idle_s: float) -> None:
        self._body = body
        self.idle_s = idle_s
        self.aborted = False
        self._waiting: anyio.CancelScope | None = None

    async def _next(self) -> bytes | None:
        with anyio.CancelScope() as scope:
            self._waiting = scope
            if self.aborted:
                scope.cancel()
            try:
                with anyio.fail_after(self.idle_s):
                    return await self._body.__anext__()
            except StopAsyncIteration:
                return None
            except TimeoutError:
                raise UploadStalled(
                    f"the upload's body stopped arriving for {self.idle_s:g}s "
                    "(AIA_DATASET_UPLOAD_IDLE_S); nothing was stored",
                    idle_s=self.idle_s,
                    setting="AIA_DATASET_UPLOAD_IDLE_S",
                ) from None
            finally:
                self._waiting = None
        raise UploadAborted

    def chunks(self) -> Iterator[bytes]:
        """The chunks, in the worker thread; UploadAborted once `abort` was called."""
        while True:
            if self.aborted:
                raise UploadAborted
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                return
            if chunk:
                yield chunk

    def abort(self) -> None:
        """On the event loop: the request is over; the thread stops at its next chunk (or now,
        if it waits for one)."""
        self.aborted = True
        if self._waiting is not None:
            self._waiting.cancel()
