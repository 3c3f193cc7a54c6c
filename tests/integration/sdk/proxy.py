"""A TCP proxy in front of a live API that can lose a response on purpose.

`CuttingProxy(upstream_url)` listens on 127.0.0.1 and forwards HTTP/1.1 requests to the API,
one upstream connection per request, while keeping the client's connection alive between
requests (several requests per connection, as a pooled client sends them). Responses are
relayed as they arrive, so an event stream (SSE) passes through unchanged.

Armed with `cut_response(method, path, times)`, the next matching requests are forwarded
whole, the server's whole response is read (the server has committed), and then the client's
connection is closed without a byte of that response: the client sees a dropped connection
after its request was handled. Chunked request bodies are refused (501, then close), so a
client that sends one is told at once rather than forwarded half a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
PIECE = 64 * 1024


class _Closed(Exception):
    """The peer closed its side (at a point where that ends the exchange)."""


class _Reader:
    """Buffered reads from a socket: a head up to its blank line, exact sizes, lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(PIECE)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> bytes | None:
        """The bytes up to and including the blank line; None when the peer closed before
        sending anything (the end of a kept-alive connection)."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise ValueError("head larger than 64 KiB")
            if not self._fill():
                if self.buf:
                    raise _Closed("closed in the middle of a head")
                return None
        out = bytes(self.buf[: end + 4])
        del self.buf[: end + 4]
        return out

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise _Closed("closed in the middle of a line")
        out = bytes(self.buf[: end + 2])
        del self.buf[: end + 2]
        return out

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise _Closed("closed before the announced length")
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def some(self, limit: int = PIECE) -> bytes:
        """Whatever is buffered or the next read; b"" at end of stream."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:limit])
        del self.buf[:limit]
        return out


@dataclass
class _Head:
    raw: bytes
    first: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, raw: bytes) -> _Head:
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower(), value.strip()))
        return cls(raw, lines[0], headers)

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def has_token(self, name: str, token: str) -> bool:
        value = self.get(name) or ""
        return token in {t.strip().lower() for t in value.split(",")}


@dataclass
class _Arm:
    method: str
    path: str
    times: int


class CuttingProxy:
    """See the module's docstring. `url` is the proxy's address once started."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname, upstream
        self.upstream = (parts.hostname, parts.port or 80)
        self.url = ""
        self.seen: Counter[tuple[str, str]] = Counter()  # (method, path without query)
        self.cut: Counter[tuple[str, str]] = Counter()  # responses withheld
        self.connections = 0  # client connections accepted
        self.errors: list[str] = []  # anything a connection's thread could not handle
        self._arms: list[_Arm] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

    # -- control ---------------------------------------------------------------------------

    def cut_response(
        self, method: str = "POST", path: str = "/tasks/submit", times: int = 1
    ) -> None:
        """Withhold the response of the next `times` requests for `method path` (the path
        without its query string), after the server has answered them."""
        with self._lock:
            self._arms.append(_Arm(method.upper(), path, times))

    def armed(self) -> int:
        """Cuts still to happen."""
        with self._lock:
            return sum(a.times for a in self._arms)

    def start(self) -> CuttingProxy:
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(5)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"proxy threads still running: {alive}"

    def __enter__(self) -> CuttingProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # stopped
            with self._lock:
                self.connections += 1
            self._spawn(self._serve, self._track(conn))

    def _take_arm(self, method: str, path: str) -> bool:
        with self._lock:
            self.seen[(method, path)] += 1
            for arm in self._arms:
                if arm.method == method and arm.path == path:
                    arm.times -= 1
                    if arm.times == 0:
                        self._arms.remove(arm)
                    return True
        return False

    def _serve(self, client: socket.socket) -> None:
        reader = _Reader(client)
        try:
            while True:
                raw = reader.head()
                if raw is None:
                    return
                head = _Head.parse(raw)
                method, target = head.first.split(" ", 2)[:2]
                path = target.split("?", 1)[0]
                if head.get("transfer-encoding") is not None:
                    self.errors.append(f"{method} {target}: chunked request body refused")
                    client.sendall(
                        b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\n"
                        b"Connection: close\r\nContent-Length: 52\r\n\r\n"
                        b"CuttingProxy: chunked request bodies are not relayed"
                    )
                    return
                body = reader.exact(int(head.get("content-length") or 0))
                cut = self._take_arm(method.upper(), path)
                keep = self._exchange(client, raw + body, method.upper(), cut)
                if cut:
                    with self._lock:
                        self.cut[(method.upper(), path)] += 1
                    return  # closing without the response is the point
                if not keep or head.has_token("connection", "close"):
                    return
        except (OSError, _Closed):
            return  # the client went away (or the proxy stops)
        except Exception as exc:  # a bug here must be visible to the test, not a hang
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._forget(client)

    def _exchange(self, client: socket.socket, request: bytes, method: str, cut: bool) -> bool:
        """Send one request upstream and relay (or, when `cut`, read and drop) its response.
        True when the client's connection may carry another request."""
        upstream = self._track(socket.create_connection(self.upstream, timeout=None))
        try:
            upstream.sendall(request)
            reader = _Reader(upstream)

            def out(data: bytes) -> None:
                if not cut:
                    client.sendall(data)

            return self._relay_response(reader, method, out)
        finally:
            self._forget(upstream)

    @staticmethod
    def _relay_response(reader: _Reader, method: str, send: Callable[[bytes], None]) -> bool:
        while True:
            raw = reader.head()
            if raw is None:
                raise _Closed("the server closed without a response")
            head = _Head.parse(raw)
            status = int(head.first.split(" ", 2)[1])
            send(raw)
            if not (100 <= status < 200 and status != 101):
                break  # past interim responses: this is the final one
        keep = not head.has_token("connection", "close") and status != 101
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return keep
        if head.has_token("transfer-encoding", "chunked"):
            _relay_chunks(reader, send)
            return keep
        length = head.get("content-length")
        if length is not None:
            _relay_exact(reader, int(length), send)
            return keep
        while piece := reader.some():  # delimited by the server closing
            send(piece)
        return False


def _relay_exact(reader: _Reader, size: int, send: Callable[[bytes], None]) -> None:
    while size:
        piece = reader.some(min(size, PIECE))
        if not piece:
            raise _Closed("closed before the announced length")
        send(piece)
        size -= len(piece)


def _relay_chunks(reader: _Reader, send: Callable[[bytes], None]) -> None:
    """A chunked body, each chunk sent on as it arrives (an event stream's events)."""
    while True:
        size_line = reader.line()
        send(size_line)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (trailer := reader.line()) != b"\r\n":
                send(trailer)
            send(b"\r\n")
            return
        _relay_exact(reader, size + 2, send)  # the chunk and its CRLF
