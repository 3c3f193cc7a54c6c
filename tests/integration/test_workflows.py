"""Workflows end to end: real PostgreSQL, real Redis, a real `celery worker` process."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aia_engine.db.models import TaskEvent
from aia_engine.tasks.control import cancel_task, retry_task
from tests.conftest import wait_until
from tests.integration.conftest import Engine, noop, wait_run_ended, workflow

pytestmark = pytest.mark.usefixtures("worker")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stages(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in view["stages"]}


def events(engine: Engine, task_id: str) -> list[TaskEvent]:
    with engine.sessions.begin() as session:
        return list(
            session.scalars(
                select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq)
            )
        )


def test_guides_complex_analysis_runs_end_to_end_with_outputs_flowing(engine: Engine) -> None:
    task_id = engine.submit(json.loads((EXAMPLES / "complex_analysis.json").read_text()))
    view = engine.wait(task_id)
    assert view["status"] == "completed", view.get("error")
    results = view["results"]
    assert results["stage_2"]["source"] == "stage:stage_1"  # analysed stage_1's records
    assert results["stage_3"]["based_on"] == ["stage_1", "stage_2"]
    report = results["stage_4"]
    assert "## stage_1" in report["markdown"] and "## stage_3" in report["markdown"]
    assert report["recommendations"] == results["stage_3"]["recommendations"]
    s = stages(view)
    for later, earlier in (("stage_2", "stage_1"), ("stage_3", "stage_2"), ("stage_4", "stage_3")):
        assert at(s[later]["started_at"]) >= at(s[earlier]["finished_at"])
    assert view["progress"] == 100.0
    seqs = [e.seq for e in events(engine, task_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [e.type for e in events(engine, task_id)]
    assert kinds[0] == "task.accepted" and kinds[-1] == "task.completed"
    assert kinds.count("stage.completed") == 4


def test_support_ticket_sentiment_example(engine: Engine) -> None:
    view = engine.wait(
        engine.submit(json.loads((EXAMPLES / "support_ticket_sentiment.json").read_text()))
    )
    assert view["status"] == "completed"
    assert view["results"]["sentiment"]["total_texts"] == 30
    assert view["results"]["report"]["markdown"].startswith("# Support ticket sentiment")


def test_diamond_runs_branches_in_parallel_and_joins(engine: Engine) -> None:
    task_id = engine.submit(
        workflow(
            {
                "a": noop(),
                "b": noop("a", sleep_s=0.6),
                "c": noop("a", sleep_s=0.6),
                "d": noop("b", "c"),
            }
        )
    )
    view = engine.wait(task_id)
    s = stages(view)
    assert view["status"] == "completed"
    assert at(s["d"]["started_at"]) >= max(at(s["b"]["finished_at"]), at(s["c"]["finished_at"]))
    assert at(s["b"]["started_at"]) >= at(s["a"]["finished_at"])
    # b and c overlapped: both started before either finished.
    assert max(at(s["b"]["started_at"]), at(s["c"]["started_at"])) < min(
        at(s["b"]["finished_at"]), at(s["c"]["finished_at"])
    )
    assert view["results"]["d"]["upstream"] == ["b", "c"]


def test_non_series_parallel_dag_respects_every_dependency(engine: Engine) -> None:
    deps = {
        "a": [],
        "b": [],
        "c": ["a", "b"],
        "d": ["b"],
        "e": ["c", "d"],
        "f": ["a"],
        "g": ["f", "d"],
    }
    task_id = engine.submit(workflow({n: noop(*d, sleep_s=0.1) for n, d in deps.items()}))
    view = engine.wait(task_id)
    assert view["status"] == "completed"
    s = stages(view)
    for name, ds in deps.items():
        for dep in ds:
            assert at(s[name]["started_at"]) >= at(s[dep]["finished_at"]), (name, dep)


def test_failing_stage_retries_then_fails_the_task_and_skips_dependents(engine: Engine) -> None:
    task_id = engine.submit(
        workflow(
            {
                "ok": noop(),
                "bad": noop(fail=True, retries=2, retry_backoff=0.1),
                "after_bad": noop("bad"),
                "after_after": noop("after_bad"),
                "independent": noop("ok", sleep_s=0.2),
            }
        )
    )
    view = engine.wait(task_id)
    s = stages(view)
    assert view["status"] == "failed"
    assert s["bad"]["status"] == "failed" and s["bad"]["attempt"] == 3
    assert s["after_bad"]["status"] == s["after_after"]["status"] == "skipped"
    assert s["after_bad"]["error"]["code"] == s["after_after"]["error"]["code"] == "E023"
    assert s["after_bad"]["started_at"] is None
    assert s["independent"]["status"] == "completed"
    assert view["error"]["stage"] == "bad" and "failed on purpose" in view["error"]["message"]
    assert view["error"]["skipped_stages"] == ["after_bad", "after_after"]
    assert [e.type for e in events(engine, task_id)].count("stage.retrying") == 2


def test_on_failure_continue_lets_dependents_run(engine: Engine) -> None:
    task_id = engine.submit(
        workflow({"flaky": noop(fail=True, on_failure="continue"), "next": noop("flaky")})
    )
    view = engine.wait(task_id)
    s = stages(view)
    assert view["status"] == "completed"
    assert s["flaky"]["status"] == "failed" and s["next"]["status"] == "completed"
    assert view["results"]["next"]["upstream"] == ["flaky"]
    assert "flaky" not in view["results"]


def test_cancel_mid_workflow_stops_everything(
    engine: Engine, worker: subprocess.Popen[bytes]
) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=5, steps=50), "later": noop("slow")}))
    engine.wait_stage(task_id, "slow", "running")  # its agent has started
    run = engine.celery_id(task_id, "slow")
    result = cancel_task(engine.sessions, engine.publisher, task_id)
    assert result["status"] == "cancelled" and set(result["cancelled_stages"]) == {"slow", "later"}
    # The revoked run has ended on the worker: whatever it could still write is written.
    wait_run_ended(worker, run, "the cancelled stage's run to end")
    view = engine.get(task_id)
    s = stages(view)
    assert view["status"] == "cancelled"
    assert s["later"]["started_at"] is None and s["later"]["status"] == "cancelled"
    assert s["slow"]["status"] == "cancelled" and s["slow"]["output"] is None


def test_retry_from_failure_reuses_completed_outputs(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    task_id = engine.submit(
        workflow(
            {
                "first": noop(echo="kept"),
                "second": noop("first", fail_until_exists=str(marker)),
                "third": noop("second"),
            }
        )
    )
    failed = engine.wait(task_id)
    assert failed["status"] == "failed"
    before = stages(failed)["first"]
    marker.touch()
    answer, started = retry_task(engine.sessions, engine.publisher, engine.gate, task_id)
    assert started
    assert answer["retried_stages"] == ["second", "third"] and answer["reused_stages"] == ["first"]
    view = engine.wait(task_id)
    after = stages(view)
    assert view["status"] == "completed"
    assert after["first"]["attempt"] == 1 and after["first"]["started_at"] == before["started_at"]
    assert view["results"]["first"]["echo"] == "kept"
    assert after["second"]["attempt"] == 1


def test_progress_is_visible_while_a_stage_runs(engine: Engine) -> None:
    task_id = engine.submit(workflow({"long": noop(sleep_s=2, steps=20)}))
    seen: list[tuple[float, dict[str, Any]]] = []

    def completed() -> bool:
        view = engine.get(task_id)
        if 0 < view["progress"] < 100:
            seen.append((view["progress"], view["partial_results"]))
        return bool(view["status"] == "completed")

    wait_until(completed, "the task to complete", timeout=30)
    assert seen, "no intermediate progress was visible"
    assert all("step" in partial for _, partial in seen)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


def test_estimated_completion_is_in_the_future_while_running(engine: Engine) -> None:
    task_id = engine.submit(workflow({"a": noop(sleep_s=1), "b": noop("a")}))
    view = engine.wait(task_id, statuses=("in_progress",))
    assert at(view["estimated_completion"]) >= at(view["created_at"])
    engine.wait(task_id)


def test_guides_submit_task_runs_its_template(engine: Engine) -> None:
    body = json.loads((EXAMPLES / "submit_data_analysis.json").read_text())
    view = engine.wait(engine.submit(body))
    assert view["status"] == "completed"
    assert view["assigned_agents"] == ["data_analysis_agent", "sentiment_analysis_agent"]
    assert view["results"]["sentiment"]["total_texts"] == 30


def test_idempotency_key_returns_the_same_task(engine: Engine) -> None:
    body = workflow({"a": noop()})
    first = engine.submit(body, idempotency_key="k-1")
    assert engine.submit(body, idempotency_key="k-1") == first
    engine.wait(first)


def test_parallel_last_stages_finishing_together_still_settle_the_task(engine: Engine) -> None:
    # The last stages of each task end at the same moment in different worker processes;
    # exactly one of them must see all stages ended and settle the task.
    ids = [engine.submit(workflow({f"p{i}": noop() for i in range(6)})) for _ in range(30)]
    for task_id in ids:
        assert engine.wait(task_id, timeout=60)["status"] == "completed"
