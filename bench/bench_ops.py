"""Operations figures: completion throughput with 1, 2 and 4 worker processes (engine and raw
Celery on the same workers, in one run), and `aia-engine batch submit` for a 10,000-line file.

Run by hand (not in CI):  python -m bench.bench_ops [--tasks 2000] [--lines 10000]
Needs DATABASE_URL pointing at a PostgreSQL server (a fresh `aia_bench_*` database is created);
a private redis-server is started on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_engine import ROOT, engine_handles, wait_completed
from bench.services import private_services


def start_workers(n: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    """`n` worker processes, each its own node with one pool process (as on n machines)."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.raw_app",
                "worker",
                "-Q",
                "aia.high,aia.default,aia.low,celery",
                "-c",
                "1",
                "-n",
                f"scale{i}-{n}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "WARNING",
                "-f",
                str(tmp / f"scale{i}-{n}.log"),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        for i in range(n)
    ]
    from bench.raw_app import app

    deadline = time.monotonic() + 60
    while len(app.control.inspect(timeout=1.0).ping() or {}) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} workers did not all start")
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)


def raw_runs(workers: int) -> int:
    """`bench.noop` runs so far, answered as soon as every worker replied (not after a timeout)."""
    from bench.raw_app import app

    stats = app.control.inspect(timeout=2.0, limit=workers).stats() or {}
    return sum(int(w.get("total", {}).get("bench.noop", 0)) for w in stats.values())


def raw_tps(n: int, workers: int) -> float:
    from bench.raw_app import app, noop

    before = raw_runs(workers)
    t0 = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            noop.apply_async(producer=producer)
    while raw_runs(workers) - before < n:
        time.sleep(0.05)
    return n / (time.perf_counter() - t0)


def engine_tps(n: int, stages: int) -> float:
    from aia_engine.tasks.batch import submit_batch

    settings, sessions, publisher, gate = engine_handles()
    chain = {f"s{i}": {"agent": "noop", "dependencies": [f"s{i - 1}"] if i else []}
             for i in range(stages)}  # fmt: skip
    body = {"task_type": "bench", "workflow": chain}
    ids: list[str] = []
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        results = submit_batch(sessions, [body] * min(100, n - start), settings=settings,
                               publisher=publisher, gate=gate, client_id="local")  # fmt: skip
        ids += [r["task_id"] for r in results]
    wait_completed(ids)
    return n / (time.perf_counter() - t0)


def bench_scaling(tasks: int, stages: int, tmp: Path) -> list[dict[str, float]]:
    rows = []
    for n in (1, 2, 4):
        procs = start_workers(n, tmp)
        try:
            raw_tps(min(200, tasks), n)  # warm-up: pools forked, connections open
            engine_tps(min(50, tasks), stages)
            raw = raw_tps(tasks, n)
            rows.append({"workers": n, "raw": raw, "engine": engine_tps(tasks, stages)})
        finally:
            stop_workers(procs)
    return rows


def bench_cli(lines: int, tmp: Path) -> dict[str, float]:
    """`aia-engine batch submit` against `aia-engine serve` (2 processes), no worker running;
    raw: the same number of Celery messages published from one script."""
    from aia_engine.auth.clients import create_client
    from aia_engine.embedded import free_port
    from aia_engine.settings import get_settings

    settings, sessions, _, _ = engine_handles()
    port = free_port()
    tiers = {t: {"per_hour": 10**7, "per_minute": 10**7, "burst": 10**6,
                 "max_active_tasks": 10**6}
             for t in ("free", "developer", "business", "enterprise")}  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "API_PORT": str(port),
        "AIA_API_WORKERS": "2",
        "AIA_RATE_LIMIT_TIERS": json.dumps(tiers),
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
        "AIA_WEBHOOK_ENCRYPTION_KEY": settings.webhook_encryption_key.get_secret_value(),
    }
    api = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        made = create_client(sessions, name="bench", tier="enterprise", scopes="read write")
        path = tmp / "batch.jsonl"
        row = {"task_type": "bench", "workflow": {"only": {"agent": "noop"}}}
        path.write_text("".join(json.dumps({**row, "description": f"line {i}"}) + "\n"
                                for i in range(lines)))  # fmt: skip
        cli_env = {**env, "AIA_API_URL": f"http://127.0.0.1:{port}",
                   "AIA_CLIENT_ID": made.client_id, "AIA_CLIENT_SECRET": made.client_secret}  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cli", "batch", "submit",
                               str(path), "--no-progress", "--json"], env=cli_env, cwd=ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
        cli_s = time.perf_counter() - t0
        summary: dict[str, Any] = json.loads(done.stdout)
        assert summary["accepted"] == lines, summary
        t0 = time.perf_counter()
        again = subprocess.run([sys.executable, "-m", "cli", "batch", "submit",
                                str(path), "--no-progress", "--json"], env=cli_env, cwd=ROOT,
                               capture_output=True, text=True, check=True)  # fmt: skip
        resume_s = time.perf_counter() - t0
        assert json.loads(again.stdout)["already_submitted"] == lines
    finally:
        api.terminate()
        api.wait(60)
    get_settings.cache_clear()
    # raw: one script publishing `lines` Celery messages (no persistence, no HTTP, no checks)
    script = (
        "import time, sys\n"
        "from bench.raw_app import app, noop\n"
        "t0 = time.perf_counter()\n"
        "with app.producer_or_acquire() as p:\n"
        f"    for _ in range({lines}): noop.apply_async(producer=p)\n"
        "print(time.perf_counter() - t0)\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                   cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    raw_s = time.perf_counter() - t0
    from bench.raw_app import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("celery")  # type: ignore[attr-defined]
    return {"cli_lps": lines / cli_s, "resume_lps": lines / resume_s, "raw_lps": lines / raw_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per scaling step")
    parser.add_argument("--stages", type=int, default=1, help="stages per workflow (a chain)")
    parser.add_argument("--lines", type=int, default=10_000, help="lines in the batch file")
    args = parser.parse_args()
    with private_services("ops") as svc:
        svc.tmp.mkdir(parents=True, exist_ok=True)
        print(f"completion throughput, {args.tasks} workflows of {args.stages} no-op stage(s); "
              "each worker its own node with one pool process:")  # fmt: skip
        base = None
        for row in bench_scaling(args.tasks, args.stages, svc.tmp):
            base = base or row["engine"]
            print(
                f"  {row['workers']} worker(s): raw Celery {row['raw']:.0f}/s   engine "
                f"{row['engine']:.0f}/s   ratio {row['engine'] / row['raw']:.2f}   "
                f"engine scaling x{row['engine'] / base:.2f}"
            )
        cli = bench_cli(args.lines, svc.tmp)
        print(
            f"aia-engine batch submit, {args.lines} lines (API: 2 processes): "
            f"{cli['cli_lps']:.0f} lines/s end to end (process start included); "
            f"resumed run (all already submitted) {cli['resume_lps']:.0f} lines/s; "
            f"raw Celery publish from a script {cli['raw_lps']:.0f}/s; "
            f"ratio {cli['cli_lps'] / cli['raw_lps']:.2f}"
        )


if __name__ == "__main__":
    main()
