"""The `dev` lock: one holder per data directory, named to whoever is refused, released by the
operating system when its holder dies; a port that cannot be bound refused before anything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aia_engine.embedded import free_port
from cli.devlock import LOCK_FILE, ApiPortTaken, DevAlreadyRunning, claim_dev

ROOT = Path(__file__).resolve().parents[3]


def test_a_second_claim_is_refused_naming_the_holder(tmp_path: Path) -> None:
    port = free_port()
    lock = claim_dev(tmp_path / "d", "127.0.0.1", port)
    try:
        with pytest.raises(DevAlreadyRunning) as refused:
            claim_dev(tmp_path / "d", "127.0.0.1", free_port())
        said = str(refused.value)
        assert f"pid {os.getpid()}" in said and f"http://127.0.0.1:{port}" in said
        assert str((tmp_path / "d").resolve()) in said and "--data-dir" in said
    finally:
        lock.release()
    assert (tmp_path / "d" / LOCK_FILE).read_text() == ""
    claim_dev(tmp_path / "d", "127.0.0.1", port).release()  # free again


def test_a_holder_killed_by_sigkill_blocks_nothing(tmp_path: Path) -> None:
    data = tmp_path / "d"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from cli.devlock import claim_dev;"
         f" claim_dev(Path({str(data)!r}), '127.0.0.1', {free_port()}); print('held', flush=True);"
         " time.sleep(600)"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(DevAlreadyRunning, match=f"pid {holder.pid}"):
            claim_dev(data, "127.0.0.1", free_port())
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()  # else an unclosed pipe shows up as an unraisable warning
    assert json.loads((data / LOCK_FILE).read_text())["pid"] == holder.pid  # stale record ...
    lock = claim_dev(data, "127.0.0.1", free_port())  # ... that blocks nothing
    assert json.loads((data / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()


def test_a_taken_port_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(ApiPortTaken) as refused:
            claim_dev(tmp_path / "d", "127.0.0.1", port)
        assert time.monotonic() - began < 1.0
    said = str(refused.value)
    assert f"127.0.0.1:{port}" in said and "already in use" in said
    assert "--port" in said and "API_PORT" in said and "nothing was started" in said
    assert not (tmp_path / "d").exists()


def test_a_running_dev_is_named_even_when_the_port_is_also_taken(tmp_path: Path) -> None:
    port = free_port()
    lock = claim_dev(tmp_path / "d", "127.0.0.1", port)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            with pytest.raises(DevAlreadyRunning, match=f"pid {os.getpid()}"):
                claim_dev(tmp_path / "d", "127.0.0.1", port)
    finally:
        lock.release()
