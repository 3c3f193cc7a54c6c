"""One `aia-engine dev` per data directory, refused at once while another runs, free again after
that one was killed with SIGKILL; and a taken API port refused before anything starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from aia_engine.embedded import free_port
from tests.conftest import popen_to_log, wait_until

pytestmark = pytest.mark.timeout(150)  # embedded services started twice: 30 s

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cli"]
REFUSED_WITHIN_S = 10.0  # a refusal is the CLI's start-up (about 1 s here) and one check


def dev_env(data_dir: Path, **extra: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "CI", "API_PORT", "AIA_API_PORT", "PORT", "API_HOST")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return env | {"AIA_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra}


def processes_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line names `path` (embedded PostgreSQL, beat; not Redis, which
    shows only its address)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def end_group(pgid: int, timeout: float = 30) -> None:
    """Stop every process left in a dev's process group (only this test's dev made it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def end_leftovers(path: Path) -> None:
    procs = processes_using(path)
    for proc in procs:
        proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=20)
    for proc in alive:
        proc.kill()


class Devs:
    """`dev` processes started by a test, each in its own process group, all stopped after."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.started = tmp, list[subprocess.Popen[bytes]]()

    def start(self, data_dir: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = self.tmp / f"dev-{len(self.started)}.log"
        proc = popen_to_log(
            [*CLI, "dev", "-c", "1", *args],
            env=dev_env(data_dir, **env),
            cwd=ROOT,
            log=log,
            start_new_session=True,
        )
        proc.log = log  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def refused(self, data_dir: Path, *args: str, **env: str) -> tuple[str, float]:
        """Run a dev that must be refused; its output and how long it took. Nothing it might
        have started outlives it: its process group is empty once it exited."""
        began = time.monotonic()
        proc = subprocess.Popen(
            [*CLI, "dev", "-c", "1", *args],
            env=dev_env(data_dir, **env),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        out, _ = proc.communicate(timeout=120)
        took = time.monotonic() - began
        said = out.decode()
        assert proc.returncode != 0, said
        assert group_members(proc.pid) == [], said
        return said, took


@pytest.fixture
def devs(tmp_path: Path) -> Iterator[Devs]:
    made = Devs(tmp_path)
    try:
        yield made
    finally:
        for proc in made.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            end_group(proc.pid)
        end_leftovers(tmp_path)


def wait_up(proc: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    """Up when its API answers (any status: workers may still be starting)."""

    def answers() -> bool:
        assert proc.poll() is None, proc.log.read_text()  # type: ignore[attr-defined]
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        return True

    wait_until(
        answers,
        lambda: f"the dev's API to answer:\n{proc.log.read_text()}",  # type: ignore[attr-defined]
        timeout=timeout,
        interval=0.3,
        ignore=(httpx.HTTPError,),
    )


def test_a_second_dev_is_refused_and_a_killed_one_blocks_nothing(
    devs: Devs, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    port = free_port()
    first = devs.start(data, "--port", str(port))
    wait_up(first, port)
    redis = [p for p in group_members(first.pid) if "redis" in p.name()]
    assert len(redis) == 1

    # Another port, same directory: refused at once, naming the running one.
    said, took = devs.refused(data, "--port", str(free_port()))
    assert took < REFUSED_WITHIN_S, took
    assert "already running" in said
    assert f"pid {first.pid}" in said and f":{port}" in said and str(data.resolve()) in said
    assert "--data-dir" in said
    assert "starting embedded" not in said
    # The same port too: the running dev is named, not just the port.
    said, _ = devs.refused(data, "--port", str(port))
    assert f"pid {first.pid}" in said
    assert [p for p in group_members(first.pid) if "redis" in p.name()] == redis
    record = json.loads((data / "dev.lock").read_text())
    assert record["pid"] == first.pid and record["api_port"] == port

    # SIGKILL the dev itself, then end what it left in its group (its PostgreSQL, which
    # pg_ctl starts in a session of its own, goes on running: the next dev takes it over).
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    end_group(first.pid)
    second = devs.start(data, "--port", str(port))
    wait_up(second, port)
    record = json.loads((data / "dev.lock").read_text())
    assert record["pid"] == second.pid
    said, _ = devs.refused(data, "--port", str(free_port()))
    assert f"pid {second.pid}" in said

    # A clean stop stops everything, the PostgreSQL it took over included.
    second.send_signal(signal.SIGINT)
    assert second.wait(90) == 0, second.log.read_text()  # type: ignore[attr-defined]
    wait_until(
        lambda: not (processes_using(data) or group_members(second.pid)),
        lambda: f"every process of the dev ended: {[p.cmdline() for p in processes_using(data)]}",
        interval=0.2,
    )
    assert (data / "dev.lock").read_text() == ""  # no record of a dev that is not running


def test_a_taken_api_port_is_refused_before_anything_starts(devs: Devs, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, env in [(("--port", str(port)), {}), ((), {"API_PORT": str(port)})]:
            said, took = devs.refused(data, *args, **env)
            assert took < REFUSED_WITHIN_S, took
            assert f"127.0.0.1:{port}" in said and "already in use" in said, said
            assert "--port" in said and "API_PORT" in said and "nothing was started" in said
            assert not data.exists(), list(data.rglob("*"))
            assert processes_using(data) == []
