"""POST /business-intelligence/execute-cycle over HTTP with a real worker: the guide's body and
the TypeScript example's start workflows that complete with a plan (real figures from the
example graph), visible as tasks; the plan never passes the budget and respects the filters."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aia_engine.bi.catalogue import figures_of, generate
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


def _client_with_graph(
    services: Services,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    graph: Path,
    data_dir: Path,
) -> httpx.Client:
    creds = make_client(scopes="read write")
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(graph), "--client", creds.client_id],
        env={**services.env, "AIA_DATA_DIR": str(data_dir)},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    token = token_for(live_api, creds)
    return live_api.client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def seeded(
    services: Services,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    tmp_path: Path,
) -> Iterator[httpx.Client]:
    """A client whose knowledge graph holds the example business graph."""
    with _client_with_graph(services, live_api, make_client, EXAMPLE, tmp_path) as http:
        yield http


def other_graph(path: Path) -> Path:
    """The example graph with every purchase's amount tripled and every third purchase gone."""
    lines, n = [], 0
    for line in EXAMPLE.read_text().splitlines():
        item = json.loads(line)
        if item.get("type") == "PURCHASED":
            n += 1
            if n % 3 == 0:
                continue
            item["properties"]["amount"] = round(item["properties"]["amount"] * 3, 2)
        lines.append(json.dumps(item))
    path.write_text("\n".join(lines) + "\n")
    return path


def check_against_the_dashboard(http: httpx.Client, view: dict[str, Any]) -> dict[str, Any]:
    """Every strategy in the plan is the catalogue applied to the figures of GET
    /business-intelligence/dashboard?month=<the pinned month>, which serves the very cache entry
    the stages read (one computation: the same generated_at, a cache hit)."""
    plan, month = view["optimization_plan"], view["month"]
    assert month is not None and plan["figures"]["month"] == month
    r = http.get("/business-intelligence/dashboard", params={"month": month})
    assert r.status_code == 200, r.text
    dashboard = r.json()
    assert dashboard["details"]["period"]["month"] == month
    assert plan["figures"]["generated_at"] == [dashboard["generated_at"]]
    assert dashboard["details"]["cache"]["hit"] is True
    figures = figures_of(dashboard)
    expected: dict[str, tuple[float, float]] = {}
    not_generated: set[str] = set()
    for area in view["focus_areas"]:
        made, missing = generate(area, figures)
        expected |= {s["strategy"]: (s["expected_impact"], s["investment_required"]) for s in made}
        not_generated |= {m["strategy"] for m in missing}
    in_plan = [
        s
        for key in ("revenue_strategies", "customer_strategies", "operational_strategies",
                    "left_out")
        for s in plan[key]
    ]  # fmt: skip
    assert {s["strategy"] for s in in_plan} == set(expected)
    for s in in_plan:
        assert (s["expected_impact"], s["investment_required"]) == expected[s["strategy"]], s
    assert {m["strategy"] for m in plan["not_generated"]} == not_generated
    return dashboard


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
            "too_risky", "too_slow", "invalid_cost", "no_impact", "over_budget",
            "lower_value_per_cost",
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
    check_against_the_dashboard(seeded, view)
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
    check_against_the_dashboard(seeded, view)
    assert plan["operational_strategies"] == []  # not a focus area
    reasons = {s["strategy"]: s["reason"] for s in plan["left_out"]}
    assert reasons["customer_acquisition"] == "too_risky"  # high risk, medium tolerance
    assert reasons["loyalty_rewards"] == "too_slow"  # 60 days in a 30-day horizon
    assert reasons["customer_feedback_loop"] == "too_slow"  # 45 days


def test_two_clients_with_different_graphs_get_their_own_plans(
    services: Services,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    worker: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    graph_b = other_graph(tmp_path / "b.jsonl")
    with (
        _client_with_graph(services, live_api, make_client, EXAMPLE, tmp_path / "a") as a,
        _client_with_graph(services, live_api, make_client, graph_b, tmp_path / "b") as b,
    ):
        started = {
            name: http.post("/business-intelligence/execute-cycle", json=TS_BODY).json()
            for name, http in (("a", a), ("b", b))
        }
        views = {
            "a": wait_plan(a, started["a"]["optimization_id"]),
            "b": wait_plan(b, started["b"]["optimization_id"]),
        }
        assert all(v["status"] == "completed" for v in views.values()), views
        dash_a = check_against_the_dashboard(a, views["a"])
        dash_b = check_against_the_dashboard(b, views["b"])
    revenue_a = dash_a["metrics"]["revenue"]["current_month"]
    revenue_b = dash_b["metrics"]["revenue"]["current_month"]
    assert revenue_a and revenue_b and revenue_a != revenue_b
    assert dash_a["dashboard_id"] != dash_b["dashboard_id"]

    def priced(view: dict[str, Any]) -> dict[str, float]:
        plan = view["optimization_plan"]
        return {
            s["strategy"]: s["investment_required"]
            for key in ("revenue_strategies", "customer_strategies", "left_out")
            for s in plan[key]
        }

    assert priced(views["a"])["pricing_optimization"] != priced(views["b"])["pricing_optimization"]
