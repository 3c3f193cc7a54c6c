"""POST /business-intelligence/execute-cycle over HTTP with a real worker: the guide's body and
the TypeScript example's start workflows that complete with a plan (real figures from the
example graph), visible as tasks; the plan never passes the budget and respects the filters."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for, wait_task
from tests.integration.conftest import Services

pytestmark = pytest.mark.timeout(150)
ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
GUIDE_BODY = {
    "cycle_type": "quarterly_optimization",
    "focus_areas": ["revenue", "customer_satisfaction", "operational_efficiency"],
    "constraints": {"budget_limit": 50000, "time_horizon": "90_days", "risk_tolerance": "medium"},
}
TS_BODY = {  # the guide's TypeScript example, in the wire's snake_case
    "cycle_type": "monthly_optimization",
    "focus_areas": ["revenue", "customer_satisfaction"],
    "constraints": {"budget_limit": 25000, "time_horizon": "30_days", "risk_tolerance": "medium"},
}
RISKS = ("low", "medium", "high")


@pytest.fixture
def seeded(
    services: Services,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    tmp_path: Path,
) -> Iterator[httpx.Client]:
    """A client whose knowledge graph holds the example business graph."""
    creds = make_client(scopes="read write")
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(EXAMPLE), "--client", creds.client_id],
        env={**services.env, "AIA_DATA_DIR": str(tmp_path)},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    token = token_for(live_api, creds)
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


def wait_plan(http: httpx.Client, optimization_id: str) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def planned() -> dict[str, Any] | None:
        last.clear()
        last.update(http.get(f"/business-intelligence/cycles/{optimization_id}").json())
        return dict(last) if last.get("status") in ("completed", "failed", "cancelled") else None

    return wait_until(planned, lambda: f"cycle {optimization_id} to end: {last}", timeout=90)


def check_plan(plan: dict[str, Any], body: dict[str, Any]) -> None:
    constraints = body["constraints"]
    chosen = [
        s
        for group in ("revenue_strategies", "customer_strategies", "operational_strategies")
        for s in plan[group]
    ]
    total = sum(s["investment_required"] for s in chosen)
    assert total <= constraints["budget_limit"]
    assert plan["total_investment"] == round(total, 2)
    assert plan["total_expected_impact"] == round(sum(s["expected_impact"] for s in chosen), 2)
    horizon = int(constraints["time_horizon"].split("_")[0])
    allowed = RISKS[: RISKS.index(constraints["risk_tolerance"]) + 1]
    for s in chosen:
        assert s["risk"] in allowed
        assert int(s["implementation_time"].split("_")[0]) <= horizon
        assert s["reason"]
    for s in plan["left_out"]:
        assert s["reason"] in (
            "too_risky", "too_slow", "no_impact", "over_budget", "lower_value_per_cost"
        )  # fmt: skip
        if s["reason"] == "too_risky":
            assert s["risk"] not in allowed
        if s["reason"] == "over_budget":
            assert s["investment_required"] > constraints["budget_limit"]


def test_the_guides_body_completes_with_a_plan(
    worker: subprocess.Popen[bytes], seeded: httpx.Client
) -> None:
    r = seeded.post("/business-intelligence/execute-cycle", json=GUIDE_BODY)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "initiated"
    assert started["optimization_id"].startswith("opt_")
    assert started["optimization_plan"] is None
    assert started["estimated_completion"] is not None
    task_id = started["task_id"]
    view = wait_plan(seeded, started["optimization_id"])
    assert view["status"] == "completed", view
    plan = view["optimization_plan"]
    check_plan(plan, GUIDE_BODY)
    # real figures: revenue and customer strategies exist, priced from the example graph
    assert plan["revenue_strategies"] or any(s["focus_area"] == "revenue" for s in plan["left_out"])
    generated = {s["strategy"] for g in ("revenue_strategies", "customer_strategies")
                 for s in plan[g]} | {s["strategy"] for s in plan["left_out"]}  # fmt: skip
    assert {"pricing_optimization", "retention_program"} <= generated
    # every stage ran; the analyses in parallel before the strategies
    stages = {s["name"]: s for s in view["stages"]}
    assert set(stages) == {
        "analyze_revenue", "analyze_customer_satisfaction", "analyze_operational_efficiency",
        "generate_strategies", "select_strategies", "build_plan",
    }  # fmt: skip
    assert all(s["status"] == "completed" for s in stages.values())
    first_after = stages["generate_strategies"]["started_at"]
    assert all(
        stages[f"analyze_{a}"]["finished_at"] <= first_after for a in GUIDE_BODY["focus_areas"]
    )
    # the same workflow is a task like any other
    task = wait_task(seeded, task_id)
    assert task["status"] == "completed"
    assert task["assigned_agents"] == [
        "bi_analysis_agent", "bi_strategy_agent", "bi_selection_agent", "bi_plan_agent"
    ]  # fmt: skip
    listed = seeded.get("/business-intelligence/cycles").json()
    assert listed["cycles"][0]["optimization_id"] == started["optimization_id"]
    assert listed["cycles"][0]["optimization_plan"] == plan


def test_the_typescript_examples_body(
    worker: subprocess.Popen[bytes], seeded: httpx.Client
) -> None:
    r = seeded.post("/business-intelligence/execute-cycle", json=TS_BODY)
    assert r.status_code == 202, r.text
    view = wait_plan(seeded, r.json()["optimization_id"])
    assert view["status"] == "completed", view
    plan = view["optimization_plan"]
    check_plan(plan, TS_BODY)
    assert plan["operational_strategies"] == []  # not a focus area
    reasons = {s["strategy"]: s["reason"] for s in plan["left_out"]}
    assert reasons["customer_acquisition"] == "too_risky"  # high risk, medium tolerance
    assert reasons["loyalty_rewards"] == "too_slow"  # 60 days in a 30-day horizon
    assert reasons["customer_feedback_loop"] == "too_slow"  # 45 days
