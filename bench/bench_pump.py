"""The event pump's hot path alone (run by hand): how fast it publishes a backlog of task events.

    python -m bench.bench_pump --tasks 2000 --events 10 --rounds 5 [--graph 0]

Each round inserts `--tasks` x `--events` unpublished task events (plus `--graph` task-less
knowledge-graph changes, when given), then times `pump_once` (batches of 500: read the batch,
take positions, render bodies, fan out, publish to Redis) until the backlog is empty. Prints
events/s and the per-batch time per round. To compare two trees, run this file with each
tree first on PYTHONPATH, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import redis
from sqlalchemy import insert, text

from bench.services import private_services


def fill(sessions: Any, round_no: int, tasks: int, events: int, graph: int) -> None:
    from aia_engine.db.models import Task, TaskEvent

    ids = [f"task_b{round_no}_{i}" for i in range(tasks)]
    with sessions.begin() as session:
        session.execute(
            insert(Task),
            [
                {"id": t, "client_id": f"client-{i % 20}", "task_type": "custom",
                 "workflow": {}, "assigned_agents": [], "progress": 50.0}
                for i, t in enumerate(ids)
            ],
        )  # fmt: skip
        rows: list[dict[str, Any]] = [
            {"task_id": t, "seq": s, "type": "stage.completed", "stage": "s",
             "payload": {"duration_s": 0.01, "attempt": 1}, "progress": 10.0 * s}
            for s in range(1, events + 1) for t in ids
        ]  # fmt: skip
        rows += [
            {"task_id": None, "client_id": f"client-{i % 20}", "seq": i + 1,
             "type": "knowledge_graph.created", "stage": None,
             "payload": {"change_type": "created", "entity_id": f"n{i}", "entity_type": "customer",
                         "graph_version": i + 1, "source": "api"}}
            for i in range(graph)
        ]  # fmt: skip
        for start in range(0, len(rows), 5000):
            session.execute(insert(TaskEvent), rows[start : start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--graph", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with private_services("pump") as svc:
        from aia_engine.db.session import make_engine, make_sessions
        from aia_engine.events.pump import EventPump
        from aia_engine.settings import get_settings

        engine = make_engine(get_settings())
        sessions = make_sessions(engine)
        client = redis.Redis.from_url(svc.redis_url)
        pump = EventPump(sessions, client, lambda _ids: None)
        assert pump.acquire()
        try:
            for round_no in range(args.rounds):
                fill(sessions, round_no, args.tasks, args.events, args.graph)
                with sessions.begin() as session:
                    session.execute(text("ANALYZE task_events"))
                batches: list[float] = []
                total, began = 0, time.perf_counter()
                while True:
                    t0 = time.perf_counter()
                    done = pump.pump_once().events
                    if not done:
                        break
                    batches.append(time.perf_counter() - t0)
                    total += done
                elapsed = time.perf_counter() - began
                print(
                    f"round {round_no}: {total} events in {elapsed:.2f} s = "
                    f"{total / elapsed:,.0f} events/s; batch of 500 p50 "
                    f"{statistics.median(batches) * 1000:.1f} ms"
                )
        finally:
            pump.release()
            client.close()
            engine.dispose()


if __name__ == "__main__":
    main()
