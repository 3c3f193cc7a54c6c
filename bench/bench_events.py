"""Event delivery latency: webhooks and server-sent events (run by hand).

    python -m bench.bench_events --tasks 1000 --rate 100 --streams 200

Webhooks: time from a task's completion (its `task.completed` event) to the signed delivery
arriving at a receiver on 127.0.0.1, over `--tasks` one-stage tasks submitted at `--rate`/s;
against raw Celery in the same run (the work ends, a task on the webhook queue POSTs).
SSE: `--streams` open `GET /tasks/stream` streams (20 per client) on one API process; time
from each event's commit-side timestamp to its arrival on each stream.
Targets: webhook p99 <= 250 ms, SSE p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.bench_engine import engine_handles, pct, wait_completed
from bench.services import private_services

ROOT = Path(__file__).resolve().parent.parent


class Arrivals:
    def __init__(self) -> None:
        self.items: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()


def start_receiver(arrivals: Arrivals) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.time()
            with arrivals.lock:
                arrivals.items.append((now, body))
            # one write: a reply split in two small writes waits on the peer's delayed ACK
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        def log_message(self, *_args: Any) -> None:
            """No line per request: thousands of them would only slow the receiver."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def celery(*args: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.raw_app", *args, "-l", "WARNING", "-f", str(log)],
        env=env, cwd=ROOT,
    )  # fmt: skip


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def paced(n: int, rate: float, fn: Any) -> list[Any]:
    out, started = [], time.monotonic()
    for i in range(n):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        out.append(fn(i))
    return out


def one_stage_submitter(handles: Any, client_for: Any) -> Any:
    """`submit(i)`: accept one no-op task for client `client_for(i)`, in process, durably."""
    from aia_engine.tasks.models import TaskRequest
    from aia_engine.tasks.submit import submit_task

    settings, sessions, publisher, gate = handles
    request = TaskRequest.model_validate(
        {
            "task_type": "custom",
            "description": "bench",
            "workflow": {"only": {"agent": "noop", "dependencies": []}},
        }
    )

    def submit(i: int) -> str:
        return submit_task(
            sessions, request, settings=settings, publisher=publisher, gate=gate,
            client_id=client_for(i),
        ).task_id  # fmt: skip

    return submit


def bench_webhooks(args: argparse.Namespace, tmp: Path, env: dict[str, str], port: int,
                   arrivals: Arrivals) -> dict[str, float]:  # fmt: skip
    from aia_engine.webhooks import registry
    from bench.raw_app import app

    handles = engine_handles()
    settings, sessions = handles[0], handles[1]
    url = f"http://127.0.0.1:{port}/hook"
    warm = max(50, args.tasks // 10)

    def collect(n: int) -> list[tuple[float, bytes]]:
        deadline = time.monotonic() + 120
        while len(arrivals.items) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        with arrivals.lock:
            got, arrivals.items[:] = list(arrivals.items), []
        return got

    # raw Celery (a warm-up round first on both sides: connections, pools, imports)
    for n in (warm, args.tasks):
        paced(
            n,
            args.rate,
            lambda _i: app.send_task("bench.work_then_notify", args=(url,), queue="aia.default"),
        )
        got = collect(n)
    raw = [(at - json.loads(body)["ended_at"]) * 1000 for at, body in got]
    # the engine
    registry.register(
        sessions,
        registry.WebhookCreate(
            webhook_url=url, events=["task.completed"], secret="bench-secret-0123456789"
        ),
        client_id="bench-hooks",
        settings=settings.model_copy(update={"webhook_allow": [f"127.0.0.1:{port}"]}),
    )
    submit = one_stage_submitter(handles, lambda _i: "bench-hooks")

    for n in (warm, args.tasks):
        started = datetime.now(UTC)
        ids = paced(n, args.rate, submit)
        wait_completed(ids)
        got = collect(n)
    engine = [(at - ts(json.loads(body)["timestamp"])) * 1000 for at, body in got]
    from sqlalchemy import text

    with sessions.begin() as session:
        lag = session.execute(
            text(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - e.created_at)) * 1000,
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - e.created_at)) * 1000,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.created_at - d.created_at) * 1000 - a.latency_ms),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.created_at - d.created_at) * 1000 - a.latency_ms),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.latency_ms),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY a.latency_ms)
                  FROM webhook_deliveries d
                  JOIN task_events e ON 'evt_' || e.pos = d.event_id
                  JOIN webhook_attempts a ON a.delivery_id = d.id
                 WHERE d.created_at >= :started
                """
            ),
            {"started": started},
        ).one()
    print(
        f"  breakdown (p50/p99 ms): event -> delivery row {lag[0]:.1f}/{lag[1]:.1f}, "
        f"delivery row -> request sent {lag[2]:.1f}/{lag[3]:.1f}, HTTP {lag[4]:.1f}/{lag[5]:.1f}"
    )
    return {
        "raw_p50": pct(raw, 0.5), "raw_p99": pct(raw, 0.99),
        "p50": pct(engine, 0.5), "p99": pct(engine, 0.99), "delivered": len(engine),
    }  # fmt: skip


async def _streams(url: str, tokens: list[str], per_client: int, stop: asyncio.Event,
                   latencies: list[float], ready: list[int]) -> None:  # fmt: skip
    async def one(token: str) -> None:
        async with (
            httpx.AsyncClient(base_url=url, timeout=None) as http,
            http.stream("GET", "/tasks/stream", headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            assert r.status_code == 200, await r.aread()
            ready.append(1)
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    latencies.append((time.time() - ts(json.loads(line[6:])["timestamp"])) * 1000)
                if stop.is_set():
                    return

    tasks = [asyncio.create_task(one(t)) for t in tokens for _ in range(per_client)]
    await stop.wait()
    await asyncio.sleep(0.5)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def bench_sse(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict[str, float]:
    from aia_engine.auth.clients import create_client
    from aia_engine.embedded import free_port

    handles = engine_handles()
    sessions = handles[1]
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:app_from_env", "--port", str(port),
         "--log-level", "warning"], env=env, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        per_client = 20
        clients = [create_client(sessions, name=f"sse{i}", tier="enterprise", scopes="read write")
                   for i in range(max(1, args.streams // per_client))]  # fmt: skip
        tokens = []
        for c in clients:
            r = httpx.post(
                url + "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                },
            )
            tokens.append(r.json()["access_token"])
        latencies: list[float] = []
        ready: list[int] = []
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        def run() -> None:
            loop.run_until_complete(_streams(url, tokens, per_client, stop, latencies, ready))

        reader = threading.Thread(target=run)
        reader.start()
        while len(ready) < len(tokens) * per_client:
            time.sleep(0.1)
        submit = one_stage_submitter(handles, lambda i: clients[i % len(clients)].client_id)

        ids = paced(args.sse_tasks, args.sse_rate, submit)
        wait_completed(ids)
        time.sleep(1.0)
        loop.call_soon_threadsafe(stop.set)
        reader.join(30)
        return {
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "events": len(latencies),
            "streams": len(ready),
        }
    finally:
        api.terminate()
        api.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, default=100.0, help="webhook tasks submitted per second"
    )
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--sse-tasks", type=int, default=200)
    parser.add_argument("--sse-rate", type=float, default=20.0)
    args = parser.parse_args()
    with private_services("events") as svc:
        arrivals = Arrivals()
        receiver, port = start_receiver(arrivals)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AIA_WEBHOOK_ALLOW": json.dumps([f"127.0.0.1:{port}"]),
        }
        from aia_engine.settings import get_settings

        env["AIA_WEBHOOK_ENCRYPTION_KEY"] = get_settings().webhook_encryption_key.get_secret_value()
        env["JWT_SECRET_KEY"] = get_settings().jwt_secret_key.get_secret_value()
        os.environ["AIA_WEBHOOK_ENCRYPTION_KEY"] = env["AIA_WEBHOOK_ENCRYPTION_KEY"]
        os.environ["JWT_SECRET_KEY"] = env["JWT_SECRET_KEY"]
        procs = [
            celery("worker", "-Q", "aia.high,aia.default,aia.low", "-c", "2", "-n", "stages@%h",
                   "--without-mingle", "--without-gossip", log=svc.tmp / "stages.log", env=env),
            celery("worker", "-Q", "aia.webhooks", "-P", "threads", "-c", "16", "-n", "hooks@%h",
                   "--without-mingle", "--without-gossip", log=svc.tmp / "hooks.log", env=env),
            celery("beat", "-s", str(svc.tmp / "beat"), log=svc.tmp / "beat.log", env=env),
        ]  # fmt: skip
        time.sleep(5)
        try:
            hooks = bench_webhooks(args, svc.tmp, env, port, arrivals)
            print(f"webhooks, {args.tasks} tasks at {args.rate:g}/s, completion -> arrival:")
            print(f"  raw Celery notifier p50 {hooks['raw_p50']:.1f} ms p99 {hooks['raw_p99']:.1f} ms"
                  f" | engine p50 {hooks['p50']:.1f} ms p99 {hooks['p99']:.1f} ms ({hooks['delivered']:.0f} delivered)"
                  f" | p99 ratio {hooks['p99'] / hooks['raw_p99']:.2f}  (target p99 <= 250 ms)")  # fmt: skip
            sse = bench_sse(args, svc.tmp, env)
            print(f"SSE, {sse['streams']:.0f} open streams, {args.sse_tasks} tasks at {args.sse_rate:g}/s:"
                  f" {sse['events']:.0f} events received, p50 {sse['p50']:.1f} ms p99 {sse['p99']:.1f} ms"
                  "  (target p99 <= 100 ms)")  # fmt: skip
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            receiver.shutdown()


if __name__ == "__main__":
    main()
