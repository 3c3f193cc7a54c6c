"""The README's main command: `aia-engine dev` on embedded services, then `aia-engine run --wait`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import popen_to_log, wait_until

# Embedded services, then the guide's workflow with `run --wait --timeout 120`.
pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cli"]


def test_dev_runs_the_guides_workflow_on_embedded_services(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CI")}
    env |= {"AIA_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "dev.log"
    from aia_engine.embedded import free_port

    port = free_port()
    dev = popen_to_log(
        [*CLI, "dev", "-c", "1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        log=log,
    )
    try:
        services = tmp_path / "data" / "services.json"

        def started() -> bool:
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            return services.exists()

        wait_until(started, "dev to write services.json", timeout=120, interval=0.2)
        run = subprocess.run(
            [*CLI, "run", "examples/complex_analysis.json", "--wait", "--timeout", "120"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "stage_4" in run.stdout and "completed" in run.stdout
        task_id = json.loads(run.stdout[: run.stdout.index("}") + 1])["task_id"]
        status = subprocess.run(
            [*CLI, "status", task_id], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert json.loads(status.stdout)["status"] == "completed"
        # the API is up too, and its health check sees the worker
        import httpx

        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.json()["services"]["database"] == "healthy", health.text
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(10)
    assert dev.returncode == 0, (tmp_path / "dev.log").read_text()


def test_cli_explains_itself() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and "dev" in out.stdout and "reconcile" in out.stdout


def test_webhook_key_makes_a_usable_fernet_key() -> None:
    from cryptography.fernet import Fernet

    out = subprocess.run(
        [*CLI, "webhook-key"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    key = out.stdout.strip()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"


def test_run_reports_an_invalid_workflow_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "task_type": "x",
                "workflow": {
                    "a": {"agent": "noop", "dependencies": ["b"]},
                    "b": {"agent": "noop", "dependencies": ["a"]},
                },
            }
        )
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    out = subprocess.run(
        [*CLI, "run", str(bad)], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 2 and "cycle" in out.stderr
