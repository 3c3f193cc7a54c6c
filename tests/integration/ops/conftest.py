"""Operations tests: the Procfile's commands as an operator runs them, as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import popen_to_log, wait_until
from tests.integration.api.conftest import make_client  # noqa: F401  (a fixture)
from tests.integration.conftest import ROOT, Services, stop_process

FLOWER_LOGIN = ("operator", "flower-test-password")


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def ops_env(services: Services, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment an operator gives each process: the service URLs and settings only."""
    env = {
        **services.env,
        # The console scripts of the interpreter running the tests (`aia-engine`, `celery`).
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIA_DATA_DIR": str(data_dir),
        "AIA_FLOWER_BASIC_AUTH": ":".join(FLOWER_LOGIN),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return env


def start(
    services: Services, command: str | list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start a command (a Procfile line through bash, or an argv) in its own process group."""
    argv = ["bash", "-c", command] if isinstance(command, str) else command
    proc = popen_to_log(argv, env=env, cwd=ROOT, log=log, start_new_session=True)
    proc.log_path = log  # type: ignore[attr-defined]
    services.workers.append(proc)
    return proc


def log_of(proc: subprocess.Popen[bytes]) -> str:
    path: Path = proc.log_path  # type: ignore[attr-defined]
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(
    check: Any,
    proc: subprocess.Popen[bytes] | None,
    what: str,
    timeout: float = 60,
    interval: float = 0.2,
) -> Any:
    """Poll `check()` until it returns something truthy; fail early if `proc` died."""

    def checked() -> Any:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}:\n{log_of(proc)}")
        return check()

    return wait_until(
        checked,
        lambda: f"{what}:\n{log_of(proc)[-4000:] if proc else ''}",
        timeout=timeout,
        interval=interval,
        ignore=(httpx.HTTPError, OSError),
    )


def terminate(proc: subprocess.Popen[bytes], timeout: float = 40) -> int:
    """SIGTERM, as a process manager sends it; the exit code (fails if it had to be killed)."""
    code = stop_process(proc, signal.SIGTERM, timeout, must_exit=True)
    assert code is not None
    return code


def celery_ping(env: dict[str, str], node: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "inspect", "ping", "-d", node,
         "--timeout", "3"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode == 0 and "pong" in done.stdout


class ApiServer:
    """`aia-engine serve` as its own process (as the Procfile's `web` runs it)."""

    def __init__(self, services: Services, name: str, **extra: str) -> None:
        from aia_engine.embedded import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = ops_env(services, services.tmp / name, API_PORT=str(self.port), **extra)
        self.proc = start(services, "aia-engine serve", self.env, services.tmp / f"{name}.log")
        wait_for(
            lambda: httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200,
            self.proc,
            f"{name} API up",
        )

    def stop(self) -> int:
        return terminate(self.proc)


def tiers(max_active: int) -> str:
    """AIA_RATE_LIMIT_TIERS with no practical rate limit and `max_active` tasks per client."""
    limits = {
        "per_hour": 10**7,
        "per_minute": 10**7,
        "burst": 10**6,
        "max_active_tasks": max_active,
    }
    return json.dumps(dict.fromkeys(("free", "developer", "business", "enterprise"), limits))
