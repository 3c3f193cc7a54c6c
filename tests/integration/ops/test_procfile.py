"""The Procfile's commands each start from settings alone, answer, and stop cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess

import httpx

from aia_engine.embedded import free_port
from tests.integration.conftest import ROOT, Services
from tests.integration.ops.conftest import (
    FLOWER_LOGIN,
    celery_ping,
    log_of,
    ops_env,
    procfile,
    start,
    terminate,
    wait_for,
)


def test_procfile_names_every_process_an_installation_runs() -> None:
    assert set(procfile()) >= {"release", "web", "worker", "beat", "flower"}
    assert all(cmd.startswith("aia-engine ") for cmd in procfile().values())


def test_each_procfile_command_starts_answers_and_stops_on_sigterm(services: Services) -> None:
    data_dir = services.tmp / "procfile"
    api_port, flower_port = free_port(), free_port()
    env = ops_env(services, data_dir, API_PORT=str(api_port), AIA_FLOWER_PORT=str(flower_port))
    commands = procfile()
    host = socket.gethostname()

    # release: migrations, then exit
    release = subprocess.run(
        ["bash", "-c", commands["release"]], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert release.returncode == 0, release.stdout + release.stderr
    assert "latest migration" in release.stdout

    procs = {
        name: start(services, commands[name], env, services.tmp / f"procfile-{name}.log")
        for name in ("worker", "webhooks", "beat", "web", "flower")
    }
    try:
        # worker and webhooks: each answers `celery inspect ping` under its own node name (the
        # Procfile's pid is the worker's: the commands exec Celery rather than wrap it)
        for name, kind in (("worker", "stages"), ("webhooks", "webhooks")):
            node = f"aia-{kind}-{procs[name].pid}@{host}"
            wait_for(lambda node=node: celery_ping(env, node), procs[name], f"{name} ping", 90)
        # web: /health answers 200 (PostgreSQL, Redis and a live worker all checked)
        health = wait_for(
            lambda: (
                (r := httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=5)).status_code
                == 200
                and r.json()
            ),
            procs["web"],
            "web /health",
        )
        assert health["status"] == "healthy", health
        # flower: its API answers with the workers, only to its login
        flower = f"http://127.0.0.1:{flower_port}"
        workers = wait_for(
            lambda: (
                (
                    r := httpx.get(f"{flower}/api/workers?refresh=1", auth=FLOWER_LOGIN, timeout=10)
                ).status_code
                == 200
                and f"aia-stages-{procs['worker'].pid}@{host}" in r.json()
                and r.json()
            ),
            procs["flower"],
            "flower /api/workers",
            90,
        )
        assert f"aia-webhooks-{procs['webhooks'].pid}@{host}" in workers
        assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
        # beat: running its schedule
        wait_for(lambda: "beat: Starting" in log_of(procs["beat"]), procs["beat"], "beat")
    finally:
        codes = {name: terminate(proc) for name, proc in procs.items()}
    # uvicorn re-raises the SIGTERM it handled once it has shut down, so `web` ends by the signal
    # (-15), after its own graceful shutdown; Celery and Flower exit 0.
    expected = {**dict.fromkeys(procs, 0), "web": -signal.SIGTERM}
    assert codes == expected, {n: (c, log_of(procs[n])[-2000:]) for n, c in codes.items()}
    assert "Application shutdown complete." in log_of(procs["web"])
    assert "Warm shutdown" in log_of(procs["worker"])
