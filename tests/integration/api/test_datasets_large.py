"""A 100 MB CSV through a dedicated uvicorn process with flat memory, then a data_analysis
task over it on a real worker giving the statistics `statistics` computes from the file.

Prints the figures it measures (run with -s to see them): upload throughput, the API
process's peak RSS (VmHWM) before and after, and the analysis task's duration.
"""

from __future__ import annotations

import csv
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aia_engine.embedded import free_port
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import ROOT, Services, WorkerFactory, stop_process

SIZE = 100 * 1024 * 1024
REGIONS = ("north", "south", "east", "west", "central")
MB = 1024 * 1024
LONG_STAGES = {"AIA_MAX_STAGE_TIMEOUT_S": "600", "AIA_VISIBILITY_TIMEOUT_S": "700"}
"""The analysis of 100 MB takes longer than the suite's 30 s stage cap."""


def write_csv(path: Path, size: int, seed: int = 16) -> None:
    """id,date,region,amount,quantity rows (seeded) until the file holds `size` bytes."""
    rng = random.Random(seed)
    written, i = 0, 0
    with path.open("w", newline="") as out:
        out.write("id,date,region,amount,quantity\n")
        while written < size:
            lines = []
            for _ in range(10_000):
                i += 1
                day = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                amount = f"{rng.uniform(1, 5000):.2f}"
                lines.append(f"{i},{day},{rng.choice(REGIONS)},{amount},{rng.randint(1, 40)}\n")
            chunk = "".join(lines)
            out.write(chunk)
            written += len(chunk)


def memory(pid: int, field: str) -> int:
    """VmHWM (peak RSS) or VmRSS of process `pid`, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def reset_peak(pid: int) -> int:
    """Reset the peak RSS of `pid` to its current RSS (Linux: clear_refs 5); that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return memory(pid, "VmRSS")


@pytest.fixture
def api_process(services: Services) -> Iterator[tuple[str, int]]:
    """A uvicorn process of its own (its pid known), on the test database."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env={**services.env, **LONG_STAGES, "AIA_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, "the API process to answer", timeout=30)
    yield url, proc.pid
    stop_process(proc)
    assert proc.stderr is not None
    proc.stderr.close()


def expected(path: Path) -> tuple[int, dict[str, list[float]], Counter[str]]:
    columns: dict[str, list[float]] = {"id": [], "amount": [], "quantity": []}
    regions: Counter[str] = Counter()
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            for name, values in columns.items():
                values.append(float(row[name]))
            regions[row["region"]] += 1
    return len(columns["id"]), columns, regions


@pytest.mark.timeout(600)
def test_a_100_mb_csv_uploads_with_flat_memory_and_analyses_like_statistics(
    tmp_path: Path,
    api_process: tuple[str, int],
    make_client: Callable[..., Credentials],
    start_worker: WorkerFactory,
) -> None:
    url, pid = api_process
    worker = start_worker(env=LONG_STAGES, concurrency=1)
    path = tmp_path / "sales.csv"
    write_csv(path, SIZE)
    size = path.stat().st_size
    creds = make_client()
    token = httpx.post(
        f"{url}/auth/token", data=creds.form(grant_type="client_credentials")
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        # Warm up: every module an upload imports is loaded before the baseline.
        warm = http.post(
            "/datasets",
            params={"name": "warm"},
            content=b"a,b\n1,x\n",
            headers={"content-type": "text/csv"},
        )
        assert warm.status_code == 201, warm.text
        started_peak = memory(pid, "VmHWM")
        before = reset_peak(pid)  # so the peak measured is the upload's own

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(MB):
                    yield chunk

        began = time.perf_counter()
        made = http.post(
            "/datasets",
            params={"name": "sales_100mb"},
            content=chunks(),
            headers={"content-type": "text/csv", "content-length": str(size)},
        )
        upload_s = time.perf_counter() - began
        assert made.status_code == 201, made.text
        after = memory(pid, "VmHWM")
        growth = after - before
        print(
            f"\nupload: {size / MB:.1f} MiB, {made.json()['rows']} rows in {upload_s:.1f} s "
            f"= {size / MB / upload_s:.1f} MiB/s; API RSS before {before / MB:.1f} MiB (peak "
            f"since start {started_peak / MB:.1f} MiB), peak during the upload "
            f"{after / MB:.1f} MiB (growth {growth / MB:.1f} MiB)"
        )
        assert growth < 60 * MB, f"peak RSS grew {growth / MB:.1f} MiB for a {size / MB} MiB file"

        count, columns, regions = expected(path)
        assert made.json()["rows"] == count
        assert [c["type"] for c in made.json()["columns"]] == [
            "integer", "string", "string", "number", "integer"
        ]  # fmt: skip

        flow = {"stats": {"agent": "data_analysis_agent", "task": "describe", "timeout_s": 550}}
        began = time.perf_counter()
        r = http.post(
            "/tasks/orchestrate",
            json={
                "task_type": "custom",
                "workflow": flow,
                "requirements": {"data_source": "sales_100mb"},
            },
        )
        assert r.status_code == 200, r.text
        task_id = r.json()["task_id"]
        done = wait_until(
            lambda: (
                (v := http.get(f"/tasks/{task_id}").json())["status"]
                in ("completed", "failed", "cancelled")
                and v
            ),
            "the analysis to end",
            timeout=540,
            interval=1,
        )
        analysis_s = time.perf_counter() - began
        print(f"analysis task over {count} rows: {analysis_s:.1f} s")
    stop_process(worker)
    assert done["status"] == "completed", done
    out = done["results"]["stats"]
    assert out["record_count"] == count
    for name, values in columns.items():
        got = out["statistics"][name]
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        want = {
            "count": count,
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "stdev": statistics.stdev(values),
            "min": min(values),
            "max": max(values),
            "p25": q1,
            "p75": q3,
        }
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-4), (name, key, got[key], value)
    assert out["group_by"]["field"] == "region"
    assert {g: v["count"] for g, v in out["group_by"]["groups"].items()} == dict(regions)
    assert out["trends"]["time_field"] == "date" and out["trends"]["metrics"]["amount"]["points"]
