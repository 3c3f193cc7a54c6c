"""One `aia-engine dev` per data directory, and an API port that can be bound, before anything
starts.

A second `dev` in the same data directory would share the first one's embedded PostgreSQL but
start its own Redis: two brokers, two beats writing one schedule file, two reconcilers
re-dispatching each other's stages. So `dev` takes an exclusive `flock` on
`DATA_DIR/dev.lock` before it starts anything, holds it until everything it started has
stopped, and writes into the file who holds it (pid, API address, data directory), which a
refused `dev` quotes. The lock belongs to the open file, so the operating system drops it when
its `dev` dies, even by SIGKILL: a stale file never blocks the next `dev`. The file itself is
never removed (removing a lock file lets two processes lock two different files).

The API port is checked the way uvicorn will bind it (same address family and socket options),
so a taken port is reported at once, having started nothing and written nothing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "dev.lock"
_READ_WAIT_S = 2.0  # a new holder writes its record just after taking the lock
_CLAIM_WAIT_S = 0.3


class DevAlreadyRunning(RuntimeError):
    """Raised when another `aia-engine dev` holds the data directory."""

    def __init__(self, data_dir: Path, holder: dict[str, object] | None) -> None:
        where = str(data_dir.resolve())
        if holder:
            pid, url = holder.get("pid", "?"), holder.get("api_url", "?")
            who = f"pid {pid}, API {url}, data directory {holder.get('data_dir', where)}"
            stop = f"stop it first (Ctrl-C in its terminal, or `kill {pid}`)"
        else:
            who = f"data directory {where}; it has not said its pid yet"
            stop = "stop it first"
        super().__init__(
            f"an `aia-engine dev` is already running in this data directory ({who}); {stop}, "
            "or run this one in another data directory with --data-dir DIR or AIA_DATA_DIR=DIR"
        )
        self.holder = holder


class ApiPortTaken(RuntimeError):
    """Raised when the API could not listen on the address and port `dev` would give it."""

    def __init__(self, host: str, port: int, reason: str, free: int | None) -> None:
        other = free or port + 1
        super().__init__(
            f"the API cannot listen on {host}:{port}: {reason}; nothing was started. Choose "
            f"another port with `aia-engine dev --port {other}`"
            f"{'' if free is None else f' ({free} is free now)'} or set API_PORT (also read as "
            f"AIA_API_PORT or PORT), or stop what uses port {port}"
        )
        self.host, self.port = host, port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses


def bind_error(host: str, port: int) -> OSError | None:
    """Why uvicorn could not bind host:port now, or None if it could."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn sets it
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def check_port(host: str, port: int) -> None:
    """Raise ApiPortTaken unless the API can listen on host:port."""
    exc = bind_error(host, port)
    if exc is None:
        return
    if exc.errno == errno.EADDRINUSE:
        reason = "the port is already in use"
    elif exc.errno == errno.EACCES:
        reason = "permission denied: ports below 1024 need privileges"
    else:
        reason = exc.strerror or str(exc)
    free = next(
        (p for p in range(port + 1, min(port + 50, 65536)) if not bind_error(host, p)), None
    )
    raise ApiPortTaken(host, port, reason, free)


def _read_holder(fd: int) -> dict[str, object] | None:
    deadline = time.monotonic() + _READ_WAIT_S
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 65536)
        try:
            found = json.loads(raw)
            if isinstance(found, dict):
                return found
        except ValueError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _holder(path: Path) -> tuple[bool, dict[str, object] | None]:
    """Whether someone holds the lock at `path`, and their record (None if unreadable).
    Creates nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


@dataclass
class DevLock:
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)  # still locked: nobody reads a record of a stopped dev
        os.close(self.fd)  # drops the lock
        self.fd = -1


def claim_dev(data_dir: Path, host: str, port: int) -> DevLock:
    """Refuse at once if another `dev` holds `data_dir` or the API port cannot be bound (both
    checked before anything is created); then take the lock and say who holds it."""
    path = data_dir / LOCK_FILE
    held, holder = _holder(path)
    if held:
        raise DevAlreadyRunning(data_dir, holder)
    check_port(host, port)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + _CLAIM_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:  # another dev's look at the lock lasts an instant
                time.sleep(0.02)
                continue
            record = _read_holder(fd)
            os.close(fd)
            raise DevAlreadyRunning(data_dir, record) from None
    shown = f"[{host}]" if ":" in host else host
    record = {
        "pid": os.getpid(),
        "api_host": host,
        "api_port": port,
        "api_url": f"http://{shown}:{port}",
        "data_dir": str(data_dir.resolve()),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return DevLock(path, fd)
