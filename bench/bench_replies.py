"""What answering through the declared model costs per call (api/replies.py), in this process.

Run by hand:  python -m bench.bench_replies
No service needed. For a typical submit answer (POST /tasks/submit) and a typical completed
task (GET /tasks/{id}, three stages with outputs), microseconds per call of:
starlette's JSONResponse of the dict (before), `reply()` (after: validate and dump through the
model), and `reply()` under AIA_CONTRACT_CHECK=raise (the tests' exact check).
"""

from __future__ import annotations

import argparse
import timeit
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.replies import plain, reply
from api.routes import tasks

SUBMITTED = {
    "task_id": "task_4f9c2b7e1a3d4c5e8f9a0b1c2d3e4f50",
    "status": "accepted",
    "estimated_completion": "2026-11-27T21:03:05.123456Z",
    "assigned_agents": ["data_analyst", "research_assistant"],
    "tracking_url": "/tasks/task_4f9c2b7e1a3d4c5e8f9a0b1c2d3e4f50",
}


def stage(name: str, agent: str, deps: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "agent": agent,
        "status": "completed",
        "dependencies": deps,
        "attempt": 1,
        "max_attempts": 3,
        "progress": 1.0,
        "partial_results": None,
        "started_at": "2026-11-27T21:01:05.123456Z",
        "finished_at": "2026-11-27T21:01:06.654321Z",
        "error": None,
        "output": {"summary": f"{name} done", "rows": 1200, "metrics": {"mean": 4.2, "p95": 9.9}},
    }


COMPLETED = {
    "task_id": SUBMITTED["task_id"],
    "task_type": "data_analysis",
    "description": "Analyse Q3 sales and summarise the trends by region",
    "priority": "high",
    "status": "completed",
    "progress": 1.0,
    "created_at": "2026-11-27T21:01:05.000001Z",
    "updated_at": "2026-11-27T21:01:08.000001Z",
    "started_at": "2026-11-27T21:01:05.100001Z",
    "finished_at": "2026-11-27T21:01:08.000001Z",
    "estimated_completion": "2026-11-27T21:01:08.000001Z",
    "assigned_agents": ["data_analyst", "research_assistant"],
    "partial_results": {},
    "stages": [
        stage("collect", "research_assistant", []),
        stage("analyse", "data_analyst", ["collect"]),
        stage("report", "data_analyst", ["analyse"]),
    ],
    "results": {"summary": "Sales grew 12% in the north", "confidence": 0.87},
}


def request(endpoint: Any, method: str, check: str) -> Request:
    settings = SimpleNamespace(contract_check=check)
    app = SimpleNamespace(state=SimpleNamespace(resources=SimpleNamespace(settings=settings)))
    scope = {"type": "http", "method": method, "path": "/", "headers": [], "app": app}
    scope["endpoint"] = endpoint
    return Request(scope)


def per_call(fn: Any, number: int) -> float:
    """Microseconds per call, the best of 5 runs."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def measure(endpoint: Any, method: str, data: Any, n: int) -> list[tuple[str, float]]:
    log, strict = request(endpoint, method, "log"), request(endpoint, method, "raise")
    assert reply(log, data).body == plain(data)  # byte for byte what it was
    return [
        ("json.dumps (dict)", per_call(lambda: plain(data), n)),
        ("JSONResponse (before)", per_call(lambda: JSONResponse(data), n)),
        ("reply (after)", per_call(lambda: reply(log, data), n)),
        ("reply, check=raise", per_call(lambda: reply(strict, data), n)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=20_000)
    n = parser.parse_args().number
    print(f"us per call, best of 5 x {n}:")
    for label, endpoint, method, data in (
        ("submit answer (TaskAccepted)", tasks.submit, "POST", SUBMITTED),
        ("completed task (TaskView, 3 stages)", tasks.get_one, "GET", COMPLETED),
    ):
        print(
            f"  {label}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in measure(endpoint, method, data, n))
        )


if __name__ == "__main__":
    main()
