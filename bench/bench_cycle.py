"""Optimization cycle end to end over HTTP with a real worker (run by hand, under the test lock).

    flock /tmp/aia-tests.lock python -m bench.bench_cycle [--runs 20] [--graph FILE]
        [--purchases N]

One client whose knowledge graph holds the example business graph
(examples/knowledge-graph/business-graph.jsonl, or --graph, or with --purchases N the big graph
bench_dashboard.py generates: 20,000 customers, N purchases), one uvicorn process on 127.0.0.1
(rate limits off, AIA_BI_CYCLES_PER_DAY high enough) and one Celery worker (prefork, 2
processes). Each run POSTs the guide's execute-cycle body and polls GET
/business-intelligence/cycles/{id} every 10 ms until the plan is there: submit -> plan
available, p50 / max, the submit alone (it pins the month: one parse of the purchases), plus
the mean time inside each stage (from the stage rows). Two series: "cold", the client's cached
dashboards deleted before each run (the cycle computes its dashboard once, its analysis stages
share it), and "warm", the entry left in the cache (what a cycle started after a look at the
dashboard costs). A warm-up run first (worker imports, sentiment lexicon). Private database
and Redis (bench/services.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from aia_engine.auth.clients import create_client
from aia_engine.bi.cache import PREFIX
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.embedded import free_port
from aia_engine.redis.connect import sync_client
from aia_engine.settings import get_settings
from bench.bench_api import start_server
from bench.bench_dashboard import generate
from bench.services import private_services

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
BODY = {
    "cycle_type": "quarterly_optimization",
    "focus_areas": ["revenue", "customer_satisfaction", "operational_efficiency"],
    "constraints": {"budget_limit": 50000, "time_horizon": "90_days", "risk_tolerance": "medium"},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_cycle(http: httpx.Client) -> tuple[float, float, dict[str, float]]:
    """Seconds from submit to plan, of the submit alone, and spent in each stage."""
    t0 = time.perf_counter()
    r = http.post("/business-intelligence/execute-cycle", json=BODY)
    submit = time.perf_counter() - t0
    assert r.status_code == 202, r.text
    oid = r.json()["optimization_id"]
    deadline = t0 + 120
    while True:
        view = http.get(f"/business-intelligence/cycles/{oid}").json()
        if view["optimization_plan"] is not None:
            elapsed = time.perf_counter() - t0
            break
        assert view["status"] not in ("failed", "cancelled"), view
        if time.perf_counter() > deadline:
            raise RuntimeError(f"cycle {oid} gave no plan in 120 s: {view}")
        time.sleep(0.01)
    assert len(view["optimization_plan"]["figures"]["generated_at"]) == 1  # one computation
    stages = {
        s["name"]: (
            datetime.fromisoformat(s["finished_at"]) - datetime.fromisoformat(s["started_at"])
        ).total_seconds()
        for s in view["stages"]
        if s["started_at"] and s["finished_at"]
    }
    return elapsed, submit, stages


def series(
    http: httpx.Client, runs: int, forget: Callable[[], None] | None
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    times, submits, per_stage = [], [], {}  # type: ignore[var-annotated]
    for _ in range(runs):
        if forget is not None:
            forget()
        elapsed, submit, stages = one_cycle(http)
        times.append(elapsed)
        submits.append(submit)
        for name, spent in stages.items():
            per_stage.setdefault(name, []).append(spent)
    return times, submits, per_stage


def report(
    label: str, runs: int, result: tuple[list[float], list[float], dict[str, list[float]]]
) -> None:
    times, submits, per_stage = result
    print(f"  {label}, {runs} runs: p50 {percentile(times, 0.5) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms, mean {statistics.mean(times) * 1000:.0f} ms; "
          f"submit p50 {percentile(submits, 0.5) * 1000:.0f} ms")  # fmt: skip
    for name, spent in per_stage.items():
        print(f"    in stage {name}: mean {statistics.mean(spent) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--graph", type=Path, default=EXAMPLE)
    parser.add_argument("--purchases", type=int, default=0, help="generate a graph this big")
    args = parser.parse_args()
    with private_services("cycle") as svc:
        svc.tmp.mkdir(parents=True, exist_ok=True)
        os.environ["AIA_DATA_DIR"] = str(svc.tmp / "data")
        if args.purchases:
            args.graph = svc.tmp / "graph.jsonl"
            generate(args.graph, args.purchases)
        sessions = make_sessions(make_engine(get_settings(), pool_size=2))
        client = create_client(sessions, name="bench-cycle", tier="developer", scopes="read write")
        subprocess.run(
            [sys.executable, "-m", "cli", "kg", "import", str(args.graph), "--client",
             client.client_id, "--chunk-size", "20000", "--json", "--no-progress"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True,
            capture_output=True, timeout=1800,
        )  # fmt: skip
        with sessions() as s:
            s.connection().exec_driver_sql("ANALYZE kg_relationships")
        sessions.kw["bind"].dispose()
        cache = sync_client(svc.redis_url)

        def forget() -> None:
            keys = list(cache.scan_iter(f"{PREFIX}{client.client_id}:*"))
            if keys:
                cache.delete(*keys)

        env = {"AIA_RATE_LIMITS_ENABLED": "false", "AIA_LOG_LEVEL": "WARNING",
               "AIA_BI_CYCLES_PER_DAY": str(2 * args.runs + 10)}  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q",
             "aia.high,aia.default,aia.low", "-c", "2", "-n", "bench-cycle@%h",
             "--without-mingle", "--without-gossip", "-l", "WARNING",
             "-f", str(svc.tmp / "worker.log")],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
        )  # fmt: skip
        server = start_server("api.app:app_from_env", free_port(), env=env)
        try:
            port = server.args[server.args.index("--port") + 1]  # type: ignore[union-attr]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                token = http.post("/auth/token", data={
                    "grant_type": "client_credentials", "client_id": client.client_id,
                    "client_secret": client.client_secret}).json()["access_token"]  # fmt: skip
                http.headers["Authorization"] = f"Bearer {token}"
                warm, _, _ = one_cycle(http)
                cold_runs = series(http, args.runs, forget)
                warm_runs = series(http, args.runs, None)
        finally:
            server.terminate()
            server.wait(30)
            worker.terminate()
            worker.wait(60)
        print(f"optimization cycle end to end (submit -> plan over HTTP) on {args.graph.name}"
              f"{f' ({args.purchases:,} purchases)' if args.purchases else ''}, after a warm-up "
              f"of {warm:.2f} s:")  # fmt: skip
        report("cold (dashboard cache emptied before each run)", args.runs, cold_runs)
        report("warm (the dashboard entry cached)", args.runs, warm_runs)


if __name__ == "__main__":
    main()
