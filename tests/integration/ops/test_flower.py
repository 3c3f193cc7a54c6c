"""Flower against the engine's broker: its workers, and each stage's task by stage and agent."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from aia_engine.embedded import free_port
from tests.integration.conftest import Engine, Services, WorkerFactory, _stop, noop, workflow
from tests.integration.ops.conftest import FLOWER_LOGIN, ops_env, start, terminate, wait_for

STAGES = {"collect": noop(), "score": noop("collect"), "report": noop("collect", "score")}


def stage_tasks(url: str, task_id: str) -> dict[str, dict[str, Any]]:
    """Flower's tasks of one workflow, by stage (from the arguments Flower shows)."""
    tasks = httpx.get(f"{url}/api/tasks", auth=FLOWER_LOGIN, timeout=10).json()
    found = {}
    for info in tasks.values():
        if task_id in str(info.get("kwargs")) and info.get("state") == "SUCCESS":
            found[str(info["name"]).split("[")[1].split(":")[0]] = info
    return found


def test_flower_shows_the_workers_and_each_stage_by_stage_and_agent(
    services: Services, engine: Engine, start_worker: WorkerFactory
) -> None:
    port = free_port()
    env = ops_env(services, services.tmp / "flower", AIA_FLOWER_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    flower = start(services, "aia-engine flower", env, services.tmp / "flower.log")
    worker = start_worker("flowerwatched")
    try:
        # Given Flower watching while a three-stage workflow runs
        wait_for(
            lambda: (
                httpx.get(f"{url}/api/workers", auth=FLOWER_LOGIN, timeout=5).status_code == 200
            ),
            flower,
            "flower up",
        )

        # Flower answers HTTP before its event receiver has subscribed, and task events sent
        # before that are gone (a broadcast): wait until it has seen a probe task's events.
        def sees_events() -> bool:
            probe = engine.submit(workflow({"probe": noop()}))
            engine.wait(probe)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if stage_tasks(url, probe):
                    return True
                time.sleep(0.2)
            return False

        wait_for(sees_events, flower, "flower receiving task events")
        task_id = engine.submit(workflow(STAGES))
        assert engine.wait(task_id)["status"] == "completed"
        # Then its API lists the engine's worker
        workers = wait_for(
            lambda: httpx.get(f"{url}/api/workers?refresh=1", auth=FLOWER_LOGIN, timeout=10).json(),
            flower,
            "workers listed",
        )
        assert f"flowerwatched@{socket.gethostname()}" in workers
        # And each stage's Celery task by its stage and agent, not an opaque id
        seen = wait_for(
            lambda: (found := stage_tasks(url, task_id)) and len(found) == 3 and found,
            flower,
            "the three stage tasks",
        )
        for stage, info in seen.items():
            assert info["name"] == f"aia.run_stage[{stage}:test_noop]"
            assert f"'stage': '{stage}'" in info["kwargs"]
            assert "'agent': 'test_noop'" in info["kwargs"]
            assert f"'task_id': '{task_id}'" in info["kwargs"]
            assert info["worker"].startswith("flowerwatched@")
        # And only to its login
        assert httpx.get(f"{url}/api/tasks", timeout=10).status_code == 401

        # When Flower restarts, its history is still there (persistent mode)
        assert terminate(flower) == 0
        flower = start(services, "aia-engine flower", env, services.tmp / "flower-2.log")
        again = wait_for(
            lambda: (found := stage_tasks(url, task_id)) and len(found) == 3 and found,
            flower,
            "history after a restart",
        )
        assert {s: i["name"] for s, i in again.items()} == {s: i["name"] for s, i in seen.items()}
    finally:
        terminate(flower)
        _stop(worker)


def test_flower_refuses_to_start_without_a_login(services: Services) -> None:
    env = ops_env(services, services.tmp / "flower-open", AIA_FLOWER_BASIC_AUTH="")
    proc = start(services, "aia-engine flower", env, services.tmp / "flower-open.log")
    assert proc.wait(60) == 2
    assert "AIA_FLOWER_BASIC_AUTH" in (services.tmp / "flower-open.log").read_text()
