"""The operations figures from tasks and stages a real worker ran."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from aia_engine.bi.dashboard import compute_dashboard
from tests.integration.conftest import Engine, Services, noop, workflow

pytestmark = pytest.mark.timeout(90)


def test_completion_and_stage_success_from_real_runs(
    services: Services, engine: Engine, worker: subprocess.Popen[bytes]
) -> None:
    client = f"bi_ops_{secrets.token_hex(4)}"
    bodies = [
        workflow({"a": noop(), "b": noop("a")}),
        workflow({"a": noop(), "b": noop("a")}),
        workflow({"a": noop(), "b": noop("a", fail=True)}),  # the task fails at its 2nd stage
    ]
    ids = [engine.submit(body, client_id=client) for body in bodies]
    ended = [engine.wait(task_id)["status"] for task_id in ids]
    assert ended == ["completed", "completed", "failed"]
    ops = compute_dashboard(services.sessions, client)["metrics"]["operations"]
    assert ops["task_completion_rate"] == round(100 * 2 / 3, 2)
    assert ops["agent_efficiency"] == round(100 * 5 / 6, 2)  # 6 stages ran, 1 failed
    assert ops["average_response_time"] is None  # no API request was made for this client
