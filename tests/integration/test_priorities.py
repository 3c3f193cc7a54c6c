"""Priorities: stages go to one queue per priority, which workers take in weighted order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aia_engine.db.models import StageRun
from tests.conftest import wait_until
from tests.integration.conftest import (
    Engine,
    WorkerFactory,
    _stop,
    noop,
    wait_all,
    workflow,
)

pytestmark = pytest.mark.timeout(120)  # 300 queued tasks: 12 s on an idle machine


def started(engine: Engine, ids: list[str]) -> dict[str, float]:
    with engine.sessions.begin() as session:
        rows = session.execute(
            select(StageRun.task_id, StageRun.started_at).where(
                StageRun.task_id.in_(ids), StageRun.started_at.is_not(None)
            )
        ).all()
    return {task_id: at.timestamp() for task_id, at in rows}


def test_high_priority_work_overtakes_a_low_backlog_which_still_finishes(
    engine: Engine, start_worker: WorkerFactory
) -> None:
    # Given 300 low-priority tasks queued before any worker runs
    low = [engine.submit(workflow({"s": noop(sleep_s=0.03)}, priority="low")) for _ in range(300)]
    w = start_worker("prio", concurrency=2)
    try:
        wait_until(lambda: len(started(engine, low)) >= 10, "ten low tasks started", interval=0.02)
        # When 10 high-priority tasks are queued while the worker is busy with the backlog
        high = [
            engine.submit(workflow({"s": noop(sleep_s=0.03)}, priority="high")) for _ in range(10)
        ]
        counts = wait_all(engine, low + high, timeout=120)
        low_started, high_started = started(engine, low), started(engine, high)
    finally:
        _stop(w)
    # Then every high one started before most of the low backlog
    first_high, last_high = min(high_started.values()), max(high_started.values())
    before = sum(1 for at in low_started.values() if at < last_high)
    assert before < 60, f"{before} of 300 low tasks started before the last high one"
    # (weights 6:3:1 give low about one fetch in ten meanwhile; round-robin would give it half)
    between = sum(1 for at in low_started.values() if first_high < at < last_high)
    assert between <= 4, f"{between} low tasks started while the high ones were starting"
    # And the low ones still all finished
    assert counts == {"completed": 310}, counts
