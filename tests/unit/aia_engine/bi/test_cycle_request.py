"""The execute-cycle body: the guide's and the TypeScript example's bodies are accepted with
their defaults; every bad field is refused with E072 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from aia_engine.bi.cycle_request import horizon_days, parse_cycle_request
from aia_engine.bi.cycle_workflow import cycle_workflow
from aia_engine.errors import InvalidCycleRequest
from workflows.spec import parse_workflow

GUIDE: dict[str, Any] = {
    "cycle_type": "quarterly_optimization",
    "focus_areas": ["revenue", "customer_satisfaction", "operational_efficiency"],
    "constraints": {"budget_limit": 50000, "time_horizon": "90_days", "risk_tolerance": "medium"},
}


def test_the_guides_body() -> None:
    got = parse_cycle_request(GUIDE).normalized()
    assert got["constraints"] == {
        "budget_limit": 50000.0, "time_horizon": "90_days", "risk_tolerance": "medium"
    }  # fmt: skip
    assert got["horizon_days"] == 90


@pytest.mark.parametrize(
    ("cycle_type", "days"),
    [("weekly_optimization", 7), ("monthly_optimization", 30),
     ("quarterly_optimization", 90), ("annual_optimization", 365)],
)  # fmt: skip
def test_each_cycle_type_implies_a_horizon(cycle_type: str, days: int) -> None:
    body = {
        "cycle_type": cycle_type,
        "focus_areas": ["revenue"],
        "constraints": {"budget_limit": 0},
    }
    got = parse_cycle_request(body)
    assert got.horizon_days == days and got.constraints.risk_tolerance == "medium"


@pytest.mark.parametrize(
    ("horizon", "days"),
    [("1_days", 1), ("1_day", 1), ("6_weeks", 42), ("3_months", 90), ("24_months", 720),
     ("730_days", 730)],
)  # fmt: skip
def test_horizons(horizon: str, days: int) -> None:
    assert horizon_days(horizon) == days


BAD: list[tuple[str, Any, str]] = [
    ("cycle_type", "daily_optimization", "cycle_type"),
    ("cycle_type", None, "cycle_type"),
    ("focus_areas", [], "focus_areas"),
    ("focus_areas", ["revenue", "revenue"], "focus_areas"),
    ("focus_areas", ["profit"], "focus_areas.0"),
    ("focus_areas", "revenue", "focus_areas"),
    ("constraints", None, "constraints"),
    ("constraints.budget_limit", -1, "constraints.budget_limit"),
    ("constraints.budget_limit", "5000", "constraints.budget_limit"),
    ("constraints.budget_limit", True, "constraints.budget_limit"),
    ("constraints.budget_limit", 1e13, "constraints.budget_limit"),
    ("constraints.budget_limit", None, "constraints.budget_limit"),
    ("constraints.time_horizon", "90", "constraints.time_horizon"),
    ("constraints.time_horizon", "0_days", "constraints.time_horizon"),
    ("constraints.time_horizon", "3_years", "constraints.time_horizon"),
    ("constraints.time_horizon", "731_days", "constraints.time_horizon"),
    ("constraints.time_horizon", "25_months", "constraints.time_horizon"),
    ("constraints.time_horizon", 90, "constraints.time_horizon"),
    ("constraints.time_horizon", "90_days\n", "constraints.time_horizon"),
    ("constraints.time_horizon", "\n90_days", "constraints.time_horizon"),
    ("constraints.time_horizon", "90_days ", "constraints.time_horizon"),
    ("constraints.time_horizon", "90_daysx", "constraints.time_horizon"),
    ("constraints.risk_tolerance", "extreme", "constraints.risk_tolerance"),
    ("constraints.risk_tolerance", "", "constraints.risk_tolerance"),
    ("constraints.surprise", 1, "constraints.surprise"),
    ("extra", 1, "extra"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD)
def test_bad_fields_are_refused_naming_them(path: str, value: Any, field: str) -> None:
    body = {**GUIDE, "constraints": dict(GUIDE["constraints"])}
    target = body
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    with pytest.raises(InvalidCycleRequest) as caught:
        parse_cycle_request(body)
    assert caught.value.code == "E072" and caught.value.status == 422
    assert caught.value.details["field"] == field


def test_not_an_object() -> None:
    with pytest.raises(InvalidCycleRequest):
        parse_cycle_request([GUIDE])


def test_the_workflow_is_parallel_analyses_then_a_chain() -> None:
    spec = parse_workflow(cycle_workflow(parse_cycle_request(GUIDE).normalized()))
    analyses = [
        "analyze_revenue",
        "analyze_customer_satisfaction",
        "analyze_operational_efficiency",
    ]
    for name in analyses:
        assert spec.stages[name].dependencies == ()
    assert spec.stages["generate_strategies"].dependencies == tuple(analyses)
    assert spec.stages["select_strategies"].dependencies == ("generate_strategies",)
    assert set(spec.stages["build_plan"].dependencies) == {
        "generate_strategies",
        "select_strategies",
    }
