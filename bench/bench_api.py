"""HTTP submission benchmark: the engine's POST /tasks/submit vs two reference endpoints, with wrk.

Run by hand:  DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench.bench_api
Needs `wrk` (Debian package). One uvicorn worker per server, 32 connections, loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.services import private_services

ROOT = Path(__file__).resolve().parents[1]
LUA = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


def start_server(target: str, port: int, *, factory: bool = True) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        argv.insert(3, "--factory")
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start")


def wrk(
    url: str, body: str, *, token: str | None, seconds: int, connections: int, tmp: Path
) -> dict[str, float]:
    script = tmp / f"wrk-{abs(hash(url))}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    script.write_text(LUA.format(body=body, auth=auth))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def apply_async_loop(n: int) -> float:
    from bench.raw_app import noop
    from workers.app import use_redis

    use_redis(os.environ["REDIS_URL"])
    t0 = time.perf_counter()
    for _ in range(n):
        noop.apply_async()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with private_services("api") as svc:
        from aia_engine.auth.clients import create_client
        from aia_engine.db.session import make_engine, make_sessions
        from aia_engine.embedded import free_port
        from aia_engine.settings import get_settings

        os.environ.setdefault("JWT_SECRET_KEY", "bench-" + "0123456789abcdef" * 4)
        os.environ["AIA_BATCH_MAX_TASKS"] = "100"
        # The limiter and the quota still run on every request (their cost is measured), with
        # limits no benchmark reaches.
        big = {"per_hour": 10**9, "per_minute": 10**9, "burst": 10**9, "max_active_tasks": 10**9}
        os.environ["AIA_RATE_LIMIT_TIERS"] = json.dumps(
            dict.fromkeys(("free", "developer", "business", "enterprise"), big)
        )
        get_settings.cache_clear()
        creds = create_client(
            make_sessions(make_engine(get_settings())), name="bench", tier="enterprise"
        )
        api_port, ref_port = free_port(), free_port()
        servers = [
            start_server("api.app:app_from_env", api_port),
            start_server("bench.reference_app:create", ref_port),
        ]
        try:
            token = httpx.post(
                f"http://127.0.0.1:{api_port}/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": creds.client_id,
                    "client_secret": creds.client_secret,
                },
            ).json()["access_token"]
            submit = json.dumps(
                {
                    "task_type": "noop",
                    "description": "bench",
                    "priority": "medium",
                    "requirements": {"data_source": "support_tickets"},
                    "context": {"user_id": "u1"},
                }
            )
            run = {"seconds": args.seconds, "connections": args.connections, "tmp": svc.tmp}
            results: dict[str, Any] = {
                "bare apply_async": wrk(
                    f"http://127.0.0.1:{ref_port}/bare", submit, token=None, **run
                ),
                "INSERT + apply_async": wrk(
                    f"http://127.0.0.1:{ref_port}/insert", submit, token=None, **run
                ),
                "engine /tasks/submit": wrk(
                    f"http://127.0.0.1:{api_port}/tasks/submit", submit, token=token, **run
                ),
            }
            batch = json.dumps({"tasks": [json.loads(submit)] * 100})
            batch_run = {**run, "connections": 4}
            results["engine /tasks/batch-submit (100/request)"] = wrk(
                f"http://127.0.0.1:{api_port}/tasks/batch-submit", batch, token=token, **batch_run
            )
            loop_tps = apply_async_loop(3000)
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(30)
    print(
        f"HTTP submission, {args.connections} connections, {args.seconds}s each, one uvicorn worker:"
    )
    for name, r in results.items():
        print(
            f"  {name:<42} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:7.1f} ms"
            f"  non-2xx {int(r['errors'])}"
        )
    ref, eng = results["INSERT + apply_async"], results["engine /tasks/submit"]
    print(
        f"  submit vs INSERT+apply_async: throughput {eng['rps'] / ref['rps']:.2f}x (target >= 0.9), "
        f"p99 {eng['p99_ms'] / ref['p99_ms']:.2f}x (target <= 1.25)"
    )
    batch_tps = results["engine /tasks/batch-submit (100/request)"]["rps"] * 100
    print(
        f"  batch-submit {batch_tps:.0f} tasks/s vs plain apply_async loop {loop_tps:.0f} tasks/s: "
        f"{batch_tps / loop_tps:.2f}x (target >= 2)"
    )


if __name__ == "__main__":
    main()
