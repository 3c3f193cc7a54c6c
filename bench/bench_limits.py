"""The rate limiter's added latency per request, on a loopback Redis (run by hand).

    python -m bench.bench_limits --calls 20000

Times `RateLimiter.hit()` (one Lua call: bucket + hourly window) one at a time and with 32
concurrent callers on one event loop (as in an API process under load; there each figure also
holds the wait for the loop), against a bare Redis `INCR` round trip on the same (multiplexed) client in the
same run; then the same GET through two API processes, limiter on and off. Target: p99 <= 2 ms.

Each run also times the same INCR and the same bucket script on redis-py's asyncio client (its
connection pool, hiredis parsing): the figure that decides whether the hot path keeps its own
multiplexed client (`aia_engine/redis/multiplexed.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aia_engine.limits.limiter import RateLimiter
from aia_engine.redis.connect import async_client, multiplexed
from aia_engine.redis.counters import BUCKET, bucket_keys
from aia_engine.tiers import DEFAULT_TIERS, TierLimits
from bench.bench_engine import pct
from bench.services import private_services

# Limits so high that every call is admitted: the common case, and no 429 short-cuts.
OPEN = {"bench": TierLimits(per_hour=10**9, per_minute=10**9, burst=10**9)}


async def timed(fn, calls: int, concurrency: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            await fn()
            samples.append((time.perf_counter() - started) * 1000)

    share = calls // concurrency
    await asyncio.gather(*(worker(share) for _ in range(concurrency)))
    return samples


async def run(url: str, calls: int) -> None:
    client = multiplexed(url)
    limiter = RateLimiter(client, {**DEFAULT_TIERS, **OPEN})
    clients = [f"client-{i}" for i in range(50)]
    counter = iter(range(10**9))

    async def hit() -> None:
        await limiter.hit(clients[next(counter) % 50], "bench")

    async def incr() -> None:
        await client.execute("INCR", "bench:incr")

    await timed(hit, 2000, 1)  # warm-up: connections, script load
    for concurrency in (1, 32):
        base = await timed(incr, calls, concurrency)
        lim = await timed(hit, calls, concurrency)
        print(
            f"concurrency {concurrency:>2}: Redis INCR p50 {pct(base, 0.5):.3f} ms p99 {pct(base, 0.99):.3f} ms"
            f" | limiter p50 {pct(lim, 0.5):.3f} ms p99 {pct(lim, 0.99):.3f} ms"
            f" | p99 ratio {pct(lim, 0.99) / pct(base, 0.99):.2f}  (target p99 <= 2 ms)"
        )
    await limiter.close()
    await redis_py(url, calls, clients, counter)


async def redis_py(url: str, calls: int, clients: list[str], counter) -> None:  # type: ignore[no-untyped-def]
    """The same calls on redis-py's asyncio client (a connection pool)."""
    client = async_client(url)
    await client.script_load(BUCKET.text)

    async def incr() -> None:
        await client.incr("bench:incr")

    async def bucket() -> None:
        now = time.time()
        keys = bucket_keys(clients[next(counter) % 50], now)
        await client.evalsha(BUCKET.sha, 2, *keys, repr(now), 10**9, 10**9, 10**9)  # type: ignore[misc]

    await timed(bucket, 2000, 1)
    for concurrency in (1, 32):
        base = await timed(incr, calls, concurrency)
        lim = await timed(bucket, calls, concurrency)
        print(
            f"concurrency {concurrency:>2}: redis.asyncio (pool) INCR p50 {pct(base, 0.5):.3f} ms"
            f" p99 {pct(base, 0.99):.3f} ms | bucket script p50 {pct(lim, 0.5):.3f} ms"
            f" p99 {pct(lim, 0.99):.3f} ms"
        )
    await client.aclose()


def end_to_end(requests: int) -> None:
    """The same GET through two API processes, limiter on and off, one request at a time."""
    import os

    import httpx

    from aia_engine.auth.clients import create_client
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.embedded import free_port
    from aia_engine.settings import get_settings
    from bench.bench_api import start_server

    os.environ.setdefault("JWT_SECRET_KEY", "bench-" + "0123456789abcdef" * 4)
    get_settings.cache_clear()
    creds = create_client(make_sessions(make_engine(get_settings())), name="b", tier="enterprise")
    servers, urls = [], {}
    for enabled in ("true", "false"):
        os.environ["AIA_RATE_LIMITS_ENABLED"] = enabled
        port = free_port()
        servers.append(start_server("api.app:app_from_env", port))
        urls[enabled] = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(
            urls["true"] + "/auth/token",
            data={"grant_type": "client_credentials", "client_id": creds.client_id,
                  "client_secret": creds.client_secret},
        ).json()["access_token"]  # fmt: skip
        times: dict[str, list[float]] = {"true": [], "false": []}
        clients = {
            k: httpx.Client(base_url=u, headers={"Authorization": f"Bearer {token}"})
            for k, u in urls.items()
        }
        for i in range(requests + 200):
            for k in ("true", "false"):
                started = time.perf_counter()
                r = clients[k].get("/tasks", params={"limit": 1})
                assert r.status_code == 200, r.text
                if i >= 200:  # after a warm-up
                    times[k].append((time.perf_counter() - started) * 1000)
        on, off = times["true"], times["false"]
        print(
            f"end to end, GET /tasks one at a time, {requests} requests each: limiter off p50 "
            f"{pct(off, 0.5):.2f} ms p99 {pct(off, 0.99):.2f} ms | on p50 {pct(on, 0.5):.2f} ms p99 "
            f"{pct(on, 0.99):.2f} ms | added p50 {pct(on, 0.5) - pct(off, 0.5):+.2f} ms, "
            f"p99 {pct(on, 0.99) - pct(off, 0.99):+.2f} ms"
        )
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with private_services("limits") as svc:
        asyncio.run(run(svc.redis_url, args.calls))
        end_to_end(args.requests)


if __name__ == "__main__":
    main()
