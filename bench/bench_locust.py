"""The guide's locustfile against a local API: `/health` latency under the guide's load.

Starts private services (a fresh database, a redis-server on a free loopback port), one stage
worker (`aia-engine worker`, prefork -c 2) and the API (`aia-engine serve`, one uvicorn
process) on 127.0.0.1, creates an API client and the guide's `load_test` task type with the
engine's CLI, then runs
`locust -f bench/locustfile.py --headless` against http://127.0.0.1:PORT and prints locust's
summary and the `/health` percentiles from its stats. Everything it started is stopped.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        flock /tmp/aia-tests.lock python -m bench.bench_locust --users 20 --run-time 60s
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aia_engine.embedded import free_port
from bench.services import private_services

ROOT = Path(__file__).resolve().parents[1]


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (as locust reports them, without its rounding)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def report_health(timeline: Path) -> None:
    """`/health` latency over the whole run, and once every user has logged in."""
    with timeline.open() as f:
        rows = list(csv.DictReader(f))
    start = min(float(r["started"]) for r in rows)
    logged_in = max(float(r["started"]) + float(r["response_time_ms"]) / 1000
                    for r in rows if r["name"] == "/auth/token")  # fmt: skip
    health = [r for r in rows if r["name"] == "/health"]
    for label, subset in (
        ("whole run", health),
        (f"after the last login ({logged_in - start:.1f} s in)",
         [r for r in health if float(r["started"]) > logged_in]),
    ):  # fmt: skip
        times = [float(r["response_time_ms"]) for r in subset]
        if not times:
            continue
        failed = sum(r["ok"] != "True" for r in subset)
        print(
            f"/health, {label}: {len(times)} requests, {failed} failed, "
            f"p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms, "
            f"p99 {percentile(times, 99):.1f} ms, max {max(times):.1f} ms, "
            f"mean {statistics.fmean(times):.1f} ms"
        )
    slow = sorted(health, key=lambda r: -float(r["response_time_ms"]))[:5]
    print("slowest /health: " + ", ".join(
        f"{float(r['response_time_ms']):.0f} ms at {float(r['started']) - start:.1f} s"
        for r in slow
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=20)
    parser.add_argument("--run-time", default="60s")
    args = parser.parse_args()
    os.environ.setdefault("JWT_SECRET_KEY", "bench-" + "0123456789abcdef" * 4)
    with private_services("locust") as svc:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "cli"]
        made = subprocess.run(
            [*cli, "clients", "create", "--name", "locust", "--tier", "enterprise", "--json"],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        client = json.loads(made.stdout)
        # The operator defines the guide's `load_test` task type (one noop stage), as an
        # operator would before pointing the guide's locustfile at the engine.
        load_test = svc.tmp / "load_test.json"
        load_test.write_text(
            json.dumps(
                {
                    "description": "one noop stage, for the guide's locustfile",
                    "workflow": {"noop": {"agent": "noop", "task": "Do nothing"}},
                }
            )
        )
        subprocess.run(
            [*cli, "task-types", "create", "load_test", str(load_test)],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        port = free_port()
        procs = [
            _start([*cli, "worker"], svc.tmp / "worker.log", env),
            _start(
                [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                svc.tmp / "api.log",
                env,
            ),
        ]
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # the API is up and its background checks have seen the worker
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"the API never answered 200 on /health; see {svc.tmp}")
                time.sleep(0.2)
            prefix = svc.tmp / "locust"
            locust = subprocess.run(
                [
                    sys.executable, "-m", "locust", "-f",
                    f"{ROOT / 'bench' / 'locustfile.py'},{ROOT / 'bench' / 'locust_timeline.py'}",
                    "--headless", "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
                    "--run-time", args.run_time, "--host", url, "--csv", str(prefix),
                    "--only-summary",
                ],
                env={
                    **env,
                    "AIA_LOCUST_CLIENT_ID": client["client_id"],
                    "AIA_LOCUST_CLIENT_SECRET": client["client_secret"],
                    "AIA_LOCUST_TIMELINE": str(svc.tmp / "timeline.csv"),
                },
                cwd=ROOT, capture_output=True, text=True,
            )  # fmt: skip
            print(locust.stdout + locust.stderr)
            report_health(svc.tmp / "timeline.csv")
        finally:
            for proc in reversed(procs):
                _stop(proc)


if __name__ == "__main__":
    main()
