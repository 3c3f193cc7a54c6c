"""A minimal Redis client for the API's hot path (rate limiter, quota, revocation check): one
connection, many requests in flight on it at once (Redis answers in order, so each reply resolves
the oldest waiter), replies parsed by hiredis. A request costs one socket write and one future,
instead of a pooled connection checkout per call; this is what keeps the limiter's cost per API
request small (bench/README.md, "Rate limiter": redis-py's asyncio pool measured several times
slower with 32 callers in flight).

It connects where `aia_engine.redis.connect.endpoint` says: TCP, TLS or a unix socket, as an
ACL user or with a password alone, to any database.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis


def pack(*args: str | int | float | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


@dataclass(frozen=True)
class Endpoint:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    """A unix socket (then host and port are unused)."""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: ssl.SSLContext | None = None
    server_hostname: str | None = None
    """The name the server's certificate must carry (None: not checked)."""

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, server_hostname=self.server_hostname
        )

    def hello(self) -> list[bytes]:
        """What is sent before anything else: authentication, then the database."""
        out: list[bytes] = []
        if self.password is not None:
            if self.username:
                out.append(pack("AUTH", self.username, self.password))
            else:
                out.append(pack("AUTH", self.password))
        if self.db:
            out.append(pack("SELECT", self.db))
        return out


class MultiplexedRedis:
    def __init__(
        self, endpoint: Endpoint, *, connect_timeout: float = 0.25, timeout: float = 0.5
    ) -> None:
        self.endpoint = endpoint
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
                reader, writer = await asyncio.wait_for(self.endpoint.open(), self.connect_timeout)
            except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
                raise redis.ConnectionError(f"cannot connect to Redis: {exc}") from exc
            parser = hiredis.Reader()
            for command in self.endpoint.hello():  # before anything else is in flight
                writer.write(command)
                reply: Any = False
                try:
                    await writer.drain()
                    while reply is False:
                        data = await asyncio.wait_for(reader.read(4096), self.timeout)
                        if not data:
                            raise ConnectionResetError("closed during the handshake")
                        parser.feed(data)
                        reply = parser.gets()
                except (OSError, TimeoutError) as exc:
                    writer.close()
                    raise redis.ConnectionError(f"cannot connect to Redis: {exc}") from exc
                if isinstance(reply, Exception):
                    writer.close()
                    if "WRONGPASS" in str(reply) or "NOAUTH" in str(reply):
                        raise redis.AuthenticationError(str(reply))
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
