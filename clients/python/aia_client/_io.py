"""The few primitives that differ between the async source and its generated sync copy.

`aia_client/_async/` uses the `async_*`/`Async*` names; unasync (tools/generate.py) renames
them to the `sync_*`/`Sync*` ones in `aia_client/_sync/`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aia_client.errors import AIACancelledError

T = TypeVar("T")
R = TypeVar("R")

async_sleep = asyncio.sleep
sync_sleep = time.sleep
AsyncLock = asyncio.Lock
SyncLock = threading.Lock


class AsyncCancel:
    """A client's "stop": once set, every wait to retry ends at once with `AIACancelledError`.

    Set it from the event loop's own thread (an `asyncio.Event`); cancelling the task that
    awaits a request is the usual way to stop an async call, this is for stopping them all."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise AIACancelledError("cancelled: the client was told to stop")

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, unless set before or meanwhile: then raise at once."""
        self.check()
        try:
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        except TimeoutError:
            return
        self.check()


class SyncCancel:
    """A client's "stop", settable from any thread (Ctrl-C in the main thread while worker
    threads wait to retry): once set, every wait ends at once with `AIACancelledError`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise AIACancelledError("cancelled: the client was told to stop")

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, unless set before or meanwhile: then raise at once."""
        self.check()
        if self._event.wait(seconds):
            self.check()


async def async_map(fn: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int) -> list[R]:
    """`fn` over `items`, at most `limit` at once; the results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def sync_map(fn: Callable[[T], R], items: Iterable[T], limit: int) -> list[R]:
    """`fn` over `items` in up to `limit` threads; the results in order."""
    items = list(items)
    if limit == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="aia-client") as pool:
        return list(pool.map(fn, items))
