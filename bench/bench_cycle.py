"""Optimization cycle end to end over HTTP with a real worker (run by hand, under the test lock).

    flock /tmp/aia-tests.lock python -m bench.bench_cycle [--runs 20] [--graph FILE]

One client whose knowledge graph holds the example business graph
(examples/knowledge-graph/business-graph.jsonl, or --graph), one uvicorn process on 127.0.0.1
(rate limits off, AIA_BI_CYCLES_PER_DAY high enough) and one Celery worker (prefork, 2
processes). Each run POSTs the guide's execute-cycle body and polls GET
/business-intelligence/cycles/{id} every 10 ms until the plan is there: submit -> plan
available, p50 / max, plus the mean time inside each stage (from the stage rows). A warm-up
run first (worker imports, sentiment lexicon). Private database and Redis (bench/services.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from aia_engine.auth.clients import create_client
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.embedded import free_port
from aia_engine.settings import get_settings
from bench.bench_api import start_server
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


def one_cycle(http: httpx.Client) -> tuple[float, dict[str, float]]:
    """Seconds from submit to plan, and seconds spent in each stage."""
    t0 = time.perf_counter()
    r = http.post("/business-intelligence/execute-cycle", json=BODY)
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
    stages = {
        s["name"]: (
            datetime.fromisoformat(s["finished_at"]) - datetime.fromisoformat(s["started_at"])
        ).total_seconds()
        for s in view["stages"]
        if s["started_at"] and s["finished_at"]
    }
    return elapsed, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--graph", type=Path, default=EXAMPLE)
    args = parser.parse_args()
    with private_services("cycle") as svc:
        svc.tmp.mkdir(parents=True, exist_ok=True)
        os.environ["AIA_DATA_DIR"] = str(svc.tmp / "data")
        sessions = make_sessions(make_engine(get_settings(), pool_size=2))
        client = create_client(sessions, name="bench-cycle", tier="developer", scopes="read write")
        sessions.kw["bind"].dispose()
        subprocess.run(
            [sys.executable, "-m", "cli", "kg", "import", str(args.graph), "--client",
             client.client_id, "--json", "--no-progress"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True,
            capture_output=True, timeout=600,
        )  # fmt: skip
        env = {"AIA_RATE_LIMITS_ENABLED": "false", "AIA_LOG_LEVEL": "WARNING",
               "AIA_BI_CYCLES_PER_DAY": str(args.runs + 10)}  # fmt: skip
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
                warm, _ = one_cycle(http)
                times, per_stage = [], {}
                for _ in range(args.runs):
                    elapsed, stages = one_cycle(http)
                    times.append(elapsed)
                    for name, spent in stages.items():
                        per_stage.setdefault(name, []).append(spent)
        finally:
            server.terminate()
            server.wait(30)
            worker.terminate()
            worker.wait(60)
        print(f"optimization cycle end to end (submit -> plan over HTTP), {args.runs} runs "
              f"after a warm-up of {warm:.2f} s:")  # fmt: skip
        print(f"  p50 {percentile(times, 0.5) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, "
              f"mean {statistics.mean(times) * 1000:.0f} ms")  # fmt: skip
        for name, spent in per_stage.items():
            print(f"  in stage {name}: mean {statistics.mean(spent) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
