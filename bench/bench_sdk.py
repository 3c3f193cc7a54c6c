"""The Python SDK's cost: `AIAClient.tasks.submit` against raw httpx at 32 concurrent
submissions, and `tasks.submit_many` of 10,000 tasks against `aia-engine batch submit`.

Run by hand (not in CI):  python -m bench.bench_sdk [--tasks 2000] [--lines 10000] [--rounds 3]
Needs DATABASE_URL pointing at a PostgreSQL server (a fresh `aia_bench_*` database is created);
a private redis-server is started on a free loopback port; the API runs as `aia-engine serve`
with 2 processes and no rate limit; no worker runs (submission only).

Both sides of each figure run in the same run against the same server, alternating, and each
round's ratio is printed:
- **submit**: N tasks, 32 in flight. Raw: one `httpx.AsyncClient`, a token fetched once, the
  same JSON body and an `Idempotency-Key` header per task (what the SDK sends), the status
  checked. SDK: `AIAClient.tasks.submit(...)` (token handling, retries, the model built from
  the answer).
- **batch**: a 10,000-line JSON Lines file through `aia-engine batch submit --no-progress`, and
  a script that builds the same 10,000 bodies and calls `AIASyncClient.tasks.submit_many`.
  Both are new processes, timed from start to exit, so interpreter start and imports count on
  both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from bench.bench_engine import ROOT, engine_handles
from bench.services import private_services

BODY = {"task_type": "bench", "workflow": {"only": {"agent": "noop"}}}
CONCURRENCY = 32


def start_api(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str], str]:
    from aia_engine.embedded import free_port

    settings, _, _, _ = engine_handles()
    port = free_port()
    tiers = {t: {"per_hour": 10**8, "per_minute": 10**8, "burst": 10**7,
                 "max_active_tasks": 10**7}
             for t in ("free", "developer", "business", "enterprise")}  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "API_PORT": str(port),
        "AIA_API_WORKERS": "2",
        "AIA_RATE_LIMIT_TIERS": json.dumps(tiers),
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
        "AIA_WEBHOOK_ENCRYPTION_KEY": settings.webhook_encryption_key.get_secret_value(),
    }
    log = (tmp / "api.log").open("wb")
    api = subprocess.Popen([sys.executable, "-m", "cli", "serve"], env=env, cwd=ROOT,
                           stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/health/live", timeout=1)
            return api, env, url
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def raw_submit(url: str, cid: str, secret: str, n: int) -> float:
    """Seconds for `n` submissions with plain httpx, CONCURRENCY in flight."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
        token = (await http.post("/auth/token", data=form)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                headers = {**auth, "Idempotency-Key": f"raw-{uuid.uuid4().hex}"}
                body = {**BODY, "description": f"raw {i}"}
                r = await http.post("/tasks/submit", json=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code} {r.text[:200]}")
                r.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0


async def sdk_submit(url: str, cid: str, secret: str, n: int) -> float:
    """Seconds for `n` submissions with `AIAClient.tasks.submit`, CONCURRENCY in flight."""
    from aia_client import AIAClient

    async with AIAClient(cid, secret, base_url=url) as client:
        await client.health.live()
        await client._transport.token()  # as raw fetches its token before the clock starts
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                await client.tasks.submit(description=f"sdk {i}", **BODY)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0


SUBMIT_MANY = """
import json, sys, time
from aia_client import AIASyncClient
url, cid, secret, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = json.loads(sys.argv[5])
with AIASyncClient(cid, secret, base_url=url) as client:
    results = client.tasks.submit_many(
        ({**body, "description": f"line {i}"} for i in range(n))
    )
created = sum(1 for r in results if r.status != "rejected")
assert created == n, (created, n)
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a command run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr[-2000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="submissions per submit round")
    parser.add_argument("--lines", type=int, default=10_000, help="tasks per batch round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per figure")
    args = parser.parse_args()
    with private_services("sdk") as svc:
        svc.tmp.mkdir(parents=True, exist_ok=True)
        from aia_engine.auth.clients import create_client

        _, sessions, _, _ = engine_handles()
        api, env, url = start_api(svc.tmp)
        try:
            made = create_client(sessions, name="bench", tier="enterprise", scopes="read write")
            cid, secret = made.client_id, made.client_secret
            asyncio.run(raw_submit(url, cid, secret, 200))  # warm both API processes
            overheads: list[float] = []
            for r in range(args.rounds):
                if r % 2:  # alternate which goes first
                    sdk_s = asyncio.run(sdk_submit(url, cid, secret, args.tasks))
                    raw_s = asyncio.run(raw_submit(url, cid, secret, args.tasks))
                else:
                    raw_s = asyncio.run(raw_submit(url, cid, secret, args.tasks))
                    sdk_s = asyncio.run(sdk_submit(url, cid, secret, args.tasks))
                overheads.append(sdk_s / raw_s - 1)
                print(
                    f"submit round {r + 1}: raw httpx {args.tasks / raw_s:.0f}/s, SDK "
                    f"{args.tasks / sdk_s:.0f}/s, SDK overhead {100 * overheads[-1]:+.1f} %",
                    flush=True,
                )
            path = svc.tmp / "batch.jsonl"
            path.write_text("".join(json.dumps({**BODY, "description": f"line {i}"}) + "\n"
                                    for i in range(args.lines)))  # fmt: skip
            ratios: list[float] = []
            cli_env = {**env, "AIA_API_URL": url, "AIA_CLIENT_ID": cid, "AIA_CLIENT_SECRET": secret}
            for r in range(args.rounds):
                cli = [sys.executable, "-m", "cli", "batch", "submit", str(path), "--no-progress",
                       "--json", "--batch-id", f"bench-{r}"]  # fmt: skip
                many = [sys.executable, "-c", SUBMIT_MANY, url, cid, secret, str(args.lines),
                        json.dumps(BODY)]  # fmt: skip
                # Alternate which goes first: the tables grow during the run.
                if r % 2:
                    many_s, many_cpu = timed(many, env)
                    cli_s, cli_cpu = timed(cli, cli_env)
                else:
                    cli_s, cli_cpu = timed(cli, cli_env)
                    many_s, many_cpu = timed(many, env)
                ratios.append(cli_s / many_s)
                print(
                    f"batch round {r + 1}: aia-engine batch submit {args.lines / cli_s:.0f} "
                    f"lines/s (client CPU {cli_cpu:.1f} s), SDK submit_many "
                    f"{args.lines / many_s:.0f} tasks/s (client CPU {many_cpu:.1f} s), ratio "
                    f"{ratios[-1]:.2f}",
                    flush=True,
                )
            print(
                f"SDK submit overhead at {CONCURRENCY} concurrent: median "
                f"{100 * statistics.median(overheads):+.1f} % (target <= +10 %); "
                f"submit_many / batch CLI: median {statistics.median(ratios):.2f}x "
                "(target >= 0.9x)"
            )
        finally:
            api.terminate()
            api.wait(60)


if __name__ == "__main__":
    main()
