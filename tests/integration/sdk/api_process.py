"""The API as a real process that a test can kill -9 and start again on the same port.

`ApiProcess(services)` runs `python -m uvicorn --factory api.app:app_from_env` (what
`aia-engine serve` execs, with one process) against the test session's PostgreSQL and Redis,
in its own process group, logging to a file under the session's tmp directory. `restart()`
kills it with SIGKILL (no graceful shutdown: open connections just drop, as when a host dies)
and starts it again on the SAME port, returning once `/health/live` answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from types import TracebackType

import httpx

from aia_engine.embedded import free_port
from tests.conftest import wait_until
from tests.integration.conftest import ROOT, Services, log_tail


class ApiProcess:
    def __init__(self, services: Services, name: str = "api", **env: str) -> None:
        self.services = services
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**services.env, "PYTHONUNBUFFERED": "1", **env}
        self.log = services.tmp / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.restarts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 30) -> ApiProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--no-access-log", "--timeout-graceful-shutdown", "1",
        ]  # fmt: skip
        self.starts += 1
        with self.log.open("ab") as out:  # appending: the log keeps every run's lines
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        proc.log_path = self.log  # type: ignore[attr-defined]
        self.proc = proc
        self.services.workers.append(proc)  # stopped at the session's end if a test fails
        self.wait_live(timeout)
        return self

    def wait_live(self, timeout: float = 30) -> None:
        """Until GET /health/live answers 200; fails at once, with the log, if it exits."""
        proc = self.proc
        assert proc is not None

        def live() -> bool:
            assert proc.poll() is None, f"{self.name} exited:\n{log_tail(proc)}"
            return httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200

        wait_until(
            live,
            lambda: f"{self.name} to answer /health/live:\n{log_tail(proc)}",
            timeout=timeout,
            interval=0.1,
            ignore=(httpx.HTTPError,),
        )

    def kill(self) -> None:
        """SIGKILL to the process group; returns once it is gone."""
        proc = self.proc
        assert proc is not None, "not started"
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self, timeout: float = 30) -> None:
        self.kill()
        self.start(timeout)
        self.restarts += 1

    def stop(self) -> None:
        """SIGTERM (a graceful stop), killed if it takes longer than 10 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
