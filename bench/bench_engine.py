"""Engine vs raw Celery, measured in one run on one private Redis and one worker.

Run by hand (not in CI):  python -m bench.bench_engine [--tasks 2000] [--concurrency 2]
What durable stage completions cost:  python -m bench.bench_engine --commit-modes on,off
(engine throughput only, the worker restarted with each AIA_WORKER_SYNCHRONOUS_COMMIT value,
alternating for --rounds rounds). Needs DATABASE_URL pointing at a PostgreSQL server (a fresh `aia_bench_*` database is created);
a private redis-server is started on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import chain, chord, group

from bench.services import BenchServices, private_services

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@contextmanager
def bench_run(args: argparse.Namespace) -> Iterator[BenchServices]:
    """Private database and Redis, plus one worker (prefork, `args.concurrency`) serving both
    the engine's tasks and the raw baseline tasks."""
    os.environ.update({"AIA_WORKER_CONCURRENCY": str(args.concurrency), "AIA_MAX_STAGES": "200"})
    with private_services("engine") as svc, bench_worker(args, svc):
        yield svc


@contextmanager
def bench_worker(
    args: argparse.Namespace, svc: BenchServices, env: dict[str, str] | None = None
) -> Iterator[None]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.raw_app", "worker", "-Q",
         "aia.high,aia.default,aia.low,celery", "-c", str(args.concurrency), "--without-mingle",
         "--without-gossip", "-l", "WARNING", "-f", str(svc.tmp / "worker.log")],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=ROOT,
    )  # fmt: skip
    time.sleep(4)
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(30)


def redis_calls(r: redis.Redis) -> int:
    return sum(int(v["calls"]) for v in r.info("commandstats").values())


def engine_handles() -> tuple[Any, Any, Any, Any]:
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.publishing import PublishGate
    from aia_engine.settings import get_settings
    from bench.raw_app import app
    from workers.app import use_redis
    from workers.dispatch import CeleryPublisher

    settings = get_settings()
    use_redis(settings.require_redis_url())
    return (
        settings,
        make_sessions(make_engine(settings)),
        CeleryPublisher.from_settings(settings, app),
        PublishGate(1.0),
    )


def wait_completed(ids: list[str], timeout: float = 600) -> None:
    """Until every task is `completed` in PostgreSQL, as a script would wait: woken by the
    engine's end-of-task notification (`aia_engine.tasks.wait`), not by polling."""
    from aia_engine.settings import get_settings
    from aia_engine.tasks.wait import TaskWaiter

    global _waiter
    if _waiter is None:
        _waiter = TaskWaiter.from_settings(get_settings())
    statuses = _waiter.wait(ids, timeout=timeout)
    failed = {k: v for k, v in statuses.items() if v != "completed"}
    if failed:
        raise RuntimeError(f"tasks did not complete: {failed}")


_waiter: Any = None


def run_threads(threads: int, n: int, fn: Any) -> list[Any]:
    """Call `fn()` n times spread over `threads` threads; results in order of completion."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: fn(), range(n)))


def raw_done(app: Any, name: str) -> int:
    """How many `name` tasks the worker has run (from `celery inspect stats`, no per-task cost)."""
    stats = app.control.inspect(timeout=1.0).stats() or {}
    return sum(int(w.get("total", {}).get(name, 0)) for w in stats.values())


def bench_throughput(n: int, threads: int, r: redis.Redis) -> dict[str, float]:
    from bench.raw_app import app, noop

    # raw Celery: publish n no-ops, wait until the worker has run them all
    before = raw_done(app, "bench.noop")
    calls0 = redis_calls(r)
    t0 = time.perf_counter()
    run_threads(threads, n, noop.apply_async)
    raw_submit_s = time.perf_counter() - t0
    while raw_done(app, "bench.noop") - before < n:
        time.sleep(0.25)
    raw_s = time.perf_counter() - t0
    raw_calls = (redis_calls(r) - calls0) / n
    calls0 = redis_calls(r)
    engine = bench_engine_throughput(n, threads)
    eng_calls = (redis_calls(r) - calls0) / n
    return {
        "raw_tps": n / raw_s,
        "raw_submit_tps": n / raw_submit_s,
        "engine_tps": engine["engine_tps"],
        "engine_submit_tps": engine["engine_submit_tps"],
        "raw_redis_calls": raw_calls,
        "engine_redis_calls": eng_calls,
    }


def bench_engine_throughput(n: int, threads: int) -> dict[str, float]:
    """Submit n single-stage noop tasks (PostgreSQL persistence included), wait until every
    one is completed in PostgreSQL."""
    from aia_engine.tasks.models import TaskRequest
    from aia_engine.tasks.submit import submit_task

    settings, sessions, publisher, gate = engine_handles()
    # As the API submits: commit, then hand the task to the background pipelined publisher.
    from aia_engine.publishing import PublishGate, PublishPipeline

    gate = PublishGate(1.0)
    pipeline = gate.pipeline = PublishPipeline(sessions, publisher, gate)
    request = TaskRequest.model_validate({"task_type": "noop"})

    def submit() -> str:
        accepted = submit_task(sessions, request, settings=settings, publisher=publisher, gate=gate)
        return accepted.task_id

    t0 = time.perf_counter()
    ids = run_threads(threads, n, submit)
    submit_s = time.perf_counter() - t0
    wait_completed(ids)
    pipeline.close()
    eng_s = time.perf_counter() - t0
    return {"engine_tps": n / eng_s, "engine_submit_tps": n / submit_s}


def bench_commit_modes(args: argparse.Namespace, modes: list[str]) -> None:
    """Engine throughput with each worker `synchronous_commit`, in alternating rounds (so a
    drift of the machine's load hits every mode alike), one warm-up batch per worker."""
    os.environ.update({"AIA_WORKER_CONCURRENCY": str(args.concurrency), "AIA_MAX_STAGES": "200"})
    results: dict[str, list[float]] = {m: [] for m in modes}
    with private_services("commit") as svc:
        for _ in range(args.rounds):
            for mode in modes:
                with bench_worker(args, svc, {"AIA_WORKER_SYNCHRONOUS_COMMIT": mode}):
                    bench_engine_throughput(max(50, args.tasks // 10), args.threads)  # warm-up
                    results[mode].append(
                        bench_engine_throughput(args.tasks, args.threads)["engine_tps"]
                    )
        stage_ms = bench_stage_commits(modes, args.tasks // 2, args.rounds)
    print(
        f"engine throughput by worker synchronous_commit, {args.tasks} single-stage no-op tasks "
        f"per run, {args.rounds} alternating runs each, {args.threads} submitting threads, "
        f"prefork -c {args.concurrency}:"
    )
    for mode in modes:
        runs = results[mode]
        print(
            f"  {mode:>12}: median {statistics.median(runs):.0f}/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in runs)})"
        )
    if "on" in results and "off" in results:
        on, off = statistics.median(results["on"]), statistics.median(results["off"])
        print(
            f"  on/off: {on / off:.2f} ({100 * (off - on) / off:+.0f}% throughput lost to durability)"
        )
    print(
        f"one stage's claim + completion in one process ({args.tasks // 2} stages per run, "
        f"{args.rounds} alternating runs each, ms a stage):"
    )
    for mode in modes:
        runs = stage_ms[mode]
        print(
            f"  {mode:>12}: median {statistics.median(runs):.3f} ms  "
            f"(runs: {', '.join(f'{r:.3f}' for r in runs)})"
        )


def bench_stage_commits(modes: list[str], n: int, rounds: int) -> dict[str, list[float]]:
    """The stage lifecycle alone (fast path: claim and completion, two commits a stage), run
    here on sessions with each `synchronous_commit`; no worker and no broker in the measure
    (the tasks' messages stay in the private Redis, which is thrown away)."""
    from aia_engine.db.session import make_engine, make_sessions
    from aia_engine.stages.run import execute_stage
    from aia_engine.tasks.models import TaskRequest
    from aia_engine.tasks.submit import submit_task

    settings, sessions, publisher, gate = engine_handles()
    request = TaskRequest.model_validate({"task_type": "noop"})
    results: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for mode in modes:
            ids = [
                submit_task(sessions, request, settings=settings, publisher=publisher, gate=gate)
                for _ in range(n)
            ]
            stage_sessions = make_sessions(
                make_engine(settings, pool_size=1, synchronous_commit=mode)
            )
            t0 = time.perf_counter()
            for i, accepted in enumerate(ids):
                outcome = execute_stage(
                    stage_sessions,
                    task_id=accepted.task_id,
                    stage="noop",
                    celery_id=f"b-{i}",
                    settings=settings,
                )
                assert outcome.kind == "completed", outcome
            results[mode].append(1000 * (time.perf_counter() - t0) / n)
            stage_sessions.kw["bind"].dispose()
    return results


def bench_latency(kind: str, runs: int) -> dict[str, float]:
    from aia_engine.tasks.models import TaskRequest
    from aia_engine.tasks.submit import submit_task
    from bench.raw_app import noop_result

    settings, sessions, publisher, gate = engine_handles()
    raw: list[float] = []
    eng: list[float] = []
    polled: list[float] = []
    s = noop_result.si
    for i in range(runs):
        canvas = (
            chain(s(), chord([s(), s()], s()))
            if kind == "diamond"
            else chord(group([s() for _ in range(100)]), s())
        )
        t0 = time.perf_counter()
        canvas.apply_async().get(timeout=60, interval=0.001)
        raw.append(time.perf_counter() - t0)
        if kind == "diamond":
            wf = {
                "A": {"agent": "noop"},
                "B": {"agent": "noop", "dependencies": ["A"]},
                "C": {"agent": "noop", "dependencies": ["A"]},
                "D": {"agent": "noop", "dependencies": ["B", "C"]},
            }
        else:
            wf = {f"w{j}": {"agent": "noop"} for j in range(100)}
            wf["join"] = {"agent": "noop", "dependencies": [f"w{j}" for j in range(100)]}
        request = TaskRequest.model_validate({"task_type": "bench", "workflow": wf})
        t0 = time.perf_counter()
        task_id = submit_task(
            sessions, request, settings=settings, publisher=publisher, gate=gate
        ).task_id
        wait_completed([task_id])
        eng.append(time.perf_counter() - t0)
        # The same, noticed by polling the task's status every 1 ms (as raw `.get()` polls its
        # result): what the end-of-task notification is worth.
        t0 = time.perf_counter()
        task_id = submit_task(
            sessions, request, settings=settings, publisher=publisher, gate=gate
        ).task_id
        poll_completed(task_id)
        polled.append(time.perf_counter() - t0)
        if i == 0:
            raw.clear()
            eng.clear()  # warm-up
            polled.clear()
    return {
        "raw_p50_ms": 1000 * pct(raw, 0.5),
        "raw_p95_ms": 1000 * pct(raw, 0.95),
        "engine_p50_ms": 1000 * pct(eng, 0.5),
        "engine_p95_ms": 1000 * pct(eng, 0.95),
        "polled_p50_ms": 1000 * pct(polled, 0.5),
    }


def poll_completed(task_id: str, interval: float = 0.001, timeout: float = 60) -> None:
    global _poller
    if _poller is None:
        from aia_engine.settings import get_settings
        from aia_engine.tasks.wait import libpq_url

        _poller = psycopg.connect(libpq_url(get_settings().require_database_url()), autocommit=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _poller.execute("SELECT status FROM tasks WHERE id = %s", (task_id,)).fetchone()
        if row and row[0] == "completed":
            return
        time.sleep(interval)
    raise TimeoutError(task_id)


_poller: Any = None


def bench_plan_ratio(samples: int = 2000, seed: int = 7) -> dict[str, float]:
    from workflows.plan import critical_path, is_series_parallel, makespan, plan_workflow
    from workflows.spec import parse_workflow

    rng = random.Random(seed)
    unit, weighted, blind, sp = [], [], [], 0
    for _ in range(samples):
        n = rng.randint(4, 40)
        density = rng.uniform(0.05, 0.4)
        deps = {f"s{j}": [f"s{i}" for i in range(j) if rng.random() < density] for j in range(n)}
        spec = parse_workflow({k: {"agent": "noop", "dependencies": v} for k, v in deps.items()})
        weights = {k: rng.uniform(1, 10) for k in deps}
        sp += is_series_parallel(spec)
        unit.append(makespan(plan_workflow(spec)) / critical_path(spec))
        weighted.append(
            makespan(plan_workflow(spec, weights=weights), weights) / critical_path(spec, weights)
        )
        # what dispatch does today: compiled with unit weights, run with the real durations
        blind.append(makespan(plan_workflow(spec), weights) / critical_path(spec, weights))
    return {
        "samples": samples,
        "series_parallel_share": sp / samples,
        "unit_mean": statistics.fmean(unit),
        "unit_p95": pct(unit, 0.95),
        "unit_max": max(unit),
        "weighted_mean": statistics.fmean(weighted),
        "weighted_p95": pct(weighted, 0.95),
        "weighted_max": max(weighted),
        "blind_mean": statistics.fmean(blind),
        "blind_p95": pct(blind, 0.95),
        "blind_max": max(blind),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=4, help="submitting threads (both sides)")
    parser.add_argument(
        "--commit-modes",
        default="",
        help="comma-separated AIA_WORKER_SYNCHRONOUS_COMMIT values (e.g. on,off): measure only "
        "engine throughput with each",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per commit mode")
    args = parser.parse_args()
    if args.commit_modes:
        bench_commit_modes(args, [m.strip() for m in args.commit_modes.split(",") if m.strip()])
        return
    plan = bench_plan_ratio()
    print(
        f"plan/critical-path on {plan['samples']} random DAGs (4-40 stages; {plan['series_parallel_share']:.0%} series-parallel):"
    )
    print(
        f"  unit weights:   mean {plan['unit_mean']:.3f}  p95 {plan['unit_p95']:.3f}  max {plan['unit_max']:.3f}"
    )
    print(
        f"  random weights, cut with them:  mean {plan['weighted_mean']:.3f}  p95 {plan['weighted_p95']:.3f}  max {plan['weighted_max']:.3f}"
    )
    print(
        f"  random weights, cut with unit weights (as dispatched): mean {plan['blind_mean']:.3f}  p95 {plan['blind_p95']:.3f}  max {plan['blind_max']:.3f}"
    )
    with bench_run(args) as svc:
        r = redis.Redis.from_url(svc.redis_url)
        tp = bench_throughput(args.tasks, args.threads, r)
        print(
            f"throughput, {args.tasks} no-op tasks, {args.threads} submitting threads, prefork -c {args.concurrency}:"
        )
        print(
            f"  raw Celery {tp['raw_tps']:.0f}/s   engine {tp['engine_tps']:.0f}/s   ratio {tp['engine_tps'] / tp['raw_tps']:.2f}"
            f"   (publish/submit alone: raw {tp['raw_submit_tps']:.0f}/s, engine {tp['engine_submit_tps']:.0f}/s)"
        )
        print(
            f"  Redis commands per task: raw {tp['raw_redis_calls']:.1f}   engine {tp['engine_redis_calls']:.1f}"
            f"   (+{tp['engine_redis_calls'] - tp['raw_redis_calls']:.1f})"
        )
        for kind, runs in (("diamond", args.runs), ("fan-out 100", max(5, args.runs // 4))):
            lat = bench_latency("diamond" if kind == "diamond" else "fanout", runs)
            print(
                f"{kind} latency over {runs - 1} runs: raw p50 {lat['raw_p50_ms']:.1f} ms p95 {lat['raw_p95_ms']:.1f} ms"
                f" | engine p50 {lat['engine_p50_ms']:.1f} ms p95 {lat['engine_p95_ms']:.1f} ms"
                f" | p50 ratio {lat['engine_p50_ms'] / lat['raw_p50_ms']:.2f}, +{lat['engine_p50_ms'] - lat['raw_p50_ms']:.1f} ms"
            )
            print(
                f"  (engine noticed by polling every 1 ms instead of the notification: p50 {lat['polled_p50_ms']:.1f} ms,"
                f" +{lat['polled_p50_ms'] - lat['raw_p50_ms']:.1f} ms)"
            )


if __name__ == "__main__":
    main()
