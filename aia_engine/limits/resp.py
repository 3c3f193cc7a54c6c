"""A minimal Redis client for the rate limiter's hot path: one connection, many requests in
flight on it at once (Redis answers in order, so each reply resolves the oldest waiter), replies
parsed by hiredis. A request costs one socket write and one future, instead of a pooled
connection checkout per call; this is what keeps the limiter's cost per API request small.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis


def pack(*args: str | int | float | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class MultiplexedRedis:
    def __init__(self, url: str, *, connect_timeout: float = 0.25, timeout: float = 0.5) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.password = parts.password
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._connecting: asyncio.Lock | None = None

    async def _connect(self) -> asyncio.StreamWriter:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                raise redis.ConnectionError(f"cannot connect to Redis: {exc}") from exc
            parser = hiredis.Reader()
            hello: list[bytes] = []
            if self.password:
                hello.append(pack("AUTH", self.password))
            if self.db:
                hello.append(pack("SELECT", self.db))
            for command in hello:  # before anything else is in flight
                writer.write(command)
                await writer.drain()
                reply: Any = False
                while reply is False:
                    parser.feed(await asyncio.wait_for(reader.read(4096), self.timeout))
                    reply = parser.gets()
                if isinstance(reply, Exception):
                    writer.close()
                    raise redis.ConnectionError(str(reply))
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader, parser, writer))
            return writer

    async def _read(
        self, reader: asyncio.StreamReader, parser: Any, writer: asyncio.StreamWriter
    ) -> None:
        error: Exception = redis.ConnectionError("connection to Redis closed")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    waiter = self._waiters.popleft()
                    if not waiter.done():
                        waiter.set_result(reply)
        except Exception as exc:
            error = redis.ConnectionError(f"Redis connection failed: {exc}")
        finally:
            self._drop(writer, error)

    def _drop(self, writer: asyncio.StreamWriter, error: Exception) -> None:
        if self._writer is writer:
            self._writer = None
        writer.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    async def execute(self, *args: str | int | float | bytes) -> Any:
        writer = self._writer or await self._connect()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        writer.write(pack(*args))
        try:
            reply = await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError as exc:
            # Replies would now pair with the wrong waiters: start over on a new connection.
            self._drop(writer, redis.TimeoutError("Redis did not answer in time"))
            raise redis.TimeoutError("Redis did not answer in time") from exc
        if isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        return reply

    async def close(self) -> None:
        if self._writer is not None:
            self._drop(self._writer, redis.ConnectionError("closed"))
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task


async def evalsha(
    client: MultiplexedRedis, script: str, sha: str, keys: list[str], args: list[Any]
) -> Any:
    """EVALSHA, loading the script when Redis does not have it (first use, after a restart)."""
    call = ("EVALSHA", sha, len(keys), *keys, *args)
    try:
        return await client.execute(*call)
    except redis.ResponseError as exc:
        if "NOSCRIPT" not in str(exc):
            raise
        await client.execute("SCRIPT", "LOAD", script)
        return await client.execute(*call)
