"""HTTP submission benchmark: the engine's POST /tasks/submit vs two reference endpoints, with wrk.

Run by hand:  DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench.bench_api
Needs `wrk` (Debian package). One uvicorn worker per server, 32 connections, loopback only.

The run ends with the cost of the revoked-family check (issue 12): two API servers, one with
AIA_TOKEN_REVOCATION_CHECK on and one with it off, measured alternately on `GET /webhooks` (a
light authenticated read: one indexed query returning nothing) and `POST /tasks/submit`; and
the check alone, timed in this process against the same Redis. `--revocation-only` runs just
that part.
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
LUA_GET = """
wrk.method = "GET"
{auth}
"""


def start_server(
    target: str, port: int, *, factory: bool = True, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
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
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{target} did not start")


def wrk(
    url: str, body: str | None, *, token: str | None, seconds: int, connections: int, tmp: Path
) -> dict[str, float]:
    """`body` None: a GET."""
    script = tmp / f"wrk-{abs(hash(url))}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    if body is None:
        script.write_text(LUA_GET.format(auth=auth))
    else:
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


def get_token(port: int, creds: Any) -> str:
    return str(
        httpx.post(
            f"http://127.0.0.1:{port}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
        ).json()["access_token"]
    )


Found = dict[tuple[str, str], list[dict[str, float]]]


def revocation_cost(
    creds: Any, submit: str, *, rounds: int, run: dict[str, Any]
) -> tuple[Found, dict[str, float]]:
    """wrk on two servers alike but for AIA_TOKEN_REVOCATION_CHECK, alternating which goes
    first in each round so that drift of the machine falls on both sides."""
    from aia_engine.embedded import free_port

    ports = {"on": free_port(), "off": free_port()}
    servers = [
        start_server("api.app:app_from_env", ports["on"]),
        start_server(
            "api.app:app_from_env", ports["off"], env={"AIA_TOKEN_REVOCATION_CHECK": "false"}
        ),
    ]
    try:
        token = get_token(ports["on"], creds)  # one token, from a grant: it carries its family
        found: Found = {}
        for i in range(rounds):
            for endpoint, body in (("GET /webhooks", None), ("POST /tasks/submit", submit)):
                path = endpoint.split()[1]
                for side in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    url = f"http://127.0.0.1:{ports[side]}{path}"
                    found.setdefault((endpoint, side), []).append(
                        wrk(url, body, token=token, **run)
                    )
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)
    return found, check_alone(os.environ["REDIS_URL"])


def check_alone(redis_url: str, n: int = 20_000) -> dict[str, float]:
    """Microseconds per `RevokedFamilies.check` of a family that is not revoked (the common
    case: one MGET on the multiplexed connection), one at a time and 32 at once."""
    import asyncio

    from aia_engine.auth.revocation import RevokedFamilies
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.redis.connect import multiplexed, sync_client
    from aia_engine.settings import get_settings

    async def measure() -> dict[str, float]:
        settings = get_settings()
        revoked = RevokedFamilies(
            make_sessions(make_engine(settings)),
            sync_client(redis_url),
            multiplexed(redis_url),
            token_lifetime_s=3600,
        )
        revoked.reload()  # the marker is set, as in a running API
        for _ in range(1000):  # warm up
            assert not await revoked.check("f" * 32)
        t0 = time.perf_counter()
        for _ in range(n):
            await revoked.check("f" * 32)
        sequential = (time.perf_counter() - t0) / n * 1e6

        async def worker(count: int) -> None:
            for _ in range(count):
                await revoked.check("f" * 32)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // 32) for _ in range(32)))
        concurrent = (time.perf_counter() - t0) / (n // 32 * 32) * 1e6
        await revoked.fast.close()
        return {"sequential_us": sequential, "concurrent_us": concurrent}

    return asyncio.run(measure())


def print_revocation_cost(
    found: Found, alone: dict[str, float], seconds: int, connections: int
) -> None:
    print(
        f"Revoked-family check (AIA_TOKEN_REVOCATION_CHECK), {connections} connections, "
        f"{seconds}s per round, rounds alternating:"
    )
    print(
        f"  the check alone (one MGET, family not revoked): {alone['sequential_us']:.1f} us "
        f"one at a time, {alone['concurrent_us']:.1f} us each with 32 in flight"
    )
    for endpoint in ("GET /webhooks", "POST /tasks/submit"):
        on, off = found[(endpoint, "on")], found[(endpoint, "off")]
        for side, runs in (("on", on), ("off", off)):
            figures = ", ".join(
                f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms"
                f" non-2xx {int(r['errors'])}"
                for r in runs
            )
            print(f"  {endpoint:<20} check {side:<3}: {figures}")
        rps_on = sum(r["rps"] for r in on) / len(on)
        rps_off = sum(r["rps"] for r in off) / len(off)
        p50_on = sum(r["p50_ms"] for r in on) / len(on)
        p50_off = sum(r["p50_ms"] for r in off) / len(off)
        print(
            f"  {endpoint:<20} on/off: throughput {rps_on / rps_off:.3f}x, "
            f"p50 {p50_on - p50_off:+.2f} ms (means over rounds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--revocation-rounds", type=int, default=3)
    parser.add_argument(
        "--revocation-only", action="store_true", help="measure only the revoked-family check"
    )
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
        if args.revocation_only:
            found, alone = revocation_cost(creds, submit, rounds=args.revocation_rounds, run=run)
            print_revocation_cost(found, alone, args.seconds, args.connections)
            return
        api_port, ref_port = free_port(), free_port()
        servers = [
            start_server("api.app:app_from_env", api_port),
            start_server("bench.reference_app:create", ref_port),
        ]
        try:
            token = get_token(api_port, creds)
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
        found, alone = revocation_cost(creds, submit, rounds=args.revocation_rounds, run=run)
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
    print_revocation_cost(found, alone, args.seconds, args.connections)


if __name__ == "__main__":
    main()
