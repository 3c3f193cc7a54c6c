"""The rate limiter's added latency per request, on a loopback Redis (run by hand).

    python -m bench.bench_limits --calls 20000

Times `RateLimiter.hit()` (one Lua call: bucket + hourly window) one at a time and with 32
concurrent callers on one event loop (as in an API process under load), against a bare Redis
`INCR` round trip on the same client in the same run. Target: p99 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aia_engine.limits.limiter import RateLimiter, limiter_redis
from aia_engine.limits.tiers import DEFAULT_TIERS, TierLimits
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
    client = limiter_redis(url)
    limiter = RateLimiter(client, {**DEFAULT_TIERS, **OPEN})
    clients = [f"client-{i}" for i in range(50)]
    counter = iter(range(10**9))

    async def hit() -> None:
        await limiter.hit(clients[next(counter) % 50], "bench")

    async def incr() -> None:
        await client.incr("bench:incr")

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    with private_services("limits") as svc:
        asyncio.run(run(svc.redis_url, args.calls))


if __name__ == "__main__":
    main()
