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

T = TypeVar("T")
R = TypeVar("R")

async_sleep = asyncio.sleep
sync_sleep = time.sleep
AsyncLock = asyncio.Lock
SyncLock = threading.Lock


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
