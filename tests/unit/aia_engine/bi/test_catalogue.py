"""The strategy catalogue: impacts and investments are the documented functions of the
client's figures (values computed here by hand), move with them, and a strategy whose inputs
are null is not generated, with the reason."""

from __future__ import annotations

import pytest

from aia_engine.bi.catalogue import CATALOGUE, figures_of, generate

FIGURES: dict[str, float | None] = {
    "current_month": 20_000.0,
    "previous_month": 16_000.0,
    "growth_rate": 25.0,
    "forecast_next_month": 18_000.0,
    "top_customer_share": 40.0,
    "total_active": 100.0,
    "new_this_month": 10.0,
    "churn_rate": 8.0,
    "satisfaction_score": 7.0,
    "revenue_at_risk": 5_000.0,
    "at_risk": 12.0,
    "churned": 6.0,
    "active_at_start": 75.0,
    "negative_feedback_share": 20.0,
    "feedback_count": 30.0,
    "task_completion_rate": 90.0,
    "average_response_time": 0.5,
    "system_uptime": 99.0,
    "agent_efficiency": 80.0,
    "stages_finished": 200.0,
    "tasks_finished": 50.0,
    "requests_timed": 1000.0,
}


def priced(area: str, figures: dict[str, float | None]) -> dict[str, tuple[float, float]]:
    made, _ = generate(area, figures)
    return {s["strategy"]: (s["expected_impact"], s["investment_required"]) for s in made}


def test_revenue_strategies_by_hand() -> None:
    got = priced("revenue", FIGURES)
    assert got["pricing_optimization"] == (5.56, 2400.0)  # 10*25/45; 0.12*20000
    assert got["upsell_program"] == (7.2, 4000.0)  # 0.12*(100-40); 40*100
    assert got["promotion_campaign"] == (5.0, 2000.0)  # 0.5*10; 0.1*20000
    assert got["customer_acquisition"] == (5.0, 9000.0)  # 0.5*100*10/100; 4.5*200*10


def test_customer_and_operations_strategies_by_hand() -> None:
    got = priced("customer_satisfaction", FIGURES)
    assert got["retention_program"] == (11.6, 1970.0)  # 40*5000/20000 + 0.2*8; 1250 + 720
    assert got["support_quality_program"] == (5.0, 3600.0)  # 100*0.5*0.2*3.5/7; 120*30
    assert got["customer_feedback_loop"] == (8.57, 1500.0)  # 100*0.2*3/7; 15*100
    assert got["loyalty_rewards"] == (4.0, 3000.0)  # 0.5*8; 0.15*20000
    assert priced("customer_retention", FIGURES)["win_back_campaign"] == (0.9, 480.0)
    ops = priced("operational_efficiency", FIGURES)
    assert ops["workflow_automation"] == (12.5, 1600.0)  # 50*20/80; 40*200*0.2
    assert ops["failure_triage"] == (6.67, 150.0)  # 60*10/90; 30*50*0.1
    assert ops["reliability_engineering"] == (0.51, 50.0)  # 50*1/99; 5*1000*0.01
    assert ops["response_time_tuning"] == (24.0, 200.0)  # 30*0.4/0.5; 0.5*1000*0.4


def _impact(area: str, strategy: str, **changes: float) -> float:
    return priced(area, {**FIGURES, **changes})[strategy][0]


@pytest.mark.parametrize(
    ("area", "strategy", "changes"),
    [
        ("revenue", "pricing_optimization", {"growth_rate": -10.0}),  # shrinking: was 0.5
        ("revenue", "pricing_optimization", {"growth_rate": 0.0}),
        ("revenue", "upsell_program", {"top_customer_share": 100.0}),  # one customer: was 0.5
        ("revenue", "promotion_campaign", {"forecast_next_month": 25_000.0}),  # growing: was 1
        ("revenue", "customer_acquisition", {"new_this_month": 0.0}),  # none new: was 1
        ("customer_satisfaction", "retention_program", {"revenue_at_risk": 0.0}),
        ("customer_satisfaction", "support_quality_program", {"negative_feedback_share": 0.0}),
        ("customer_satisfaction", "customer_feedback_loop", {"satisfaction_score": 10.0}),
        ("customer_retention", "loyalty_rewards", {"churn_rate": 0.0}),
        ("customer_retention", "win_back_campaign", {"churned": 0.0}),
        ("operational_efficiency", "workflow_automation", {"agent_efficiency": 100.0}),
        ("operational_efficiency", "failure_triage", {"task_completion_rate": 100.0}),
        ("operational_efficiency", "reliability_engineering", {"system_uptime": 100.0}),
        ("operational_efficiency", "response_time_tuning", {"average_response_time": 0.08}),
    ],
)
def test_no_positive_floor(area: str, strategy: str, changes: dict[str, float]) -> None:
    """Where a strategy has nothing to improve its impact is 0 (and selection says no_impact),
    not a constant floor."""
    assert _impact(area, strategy, **changes) == 0.0


def test_impacts_keep_moving_where_the_old_clamps_held_them() -> None:
    # pricing was clamped at 12 from growth 33.3 %: now rises on, below 10
    highs = [_impact("revenue", "pricing_optimization", growth_rate=g) for g in (40, 80, 400)]
    assert highs == sorted(highs) and len(set(highs)) == 3 and highs[-1] < 10
    # loyalty was clamped at 30 from churn 20 %
    assert _impact("customer_retention", "loyalty_rewards", churn_rate=30.0) == 15.0
    assert _impact("customer_retention", "loyalty_rewards", churn_rate=40.0) == 20.0
    # acquisition was clamped at 25 from 48 % new customers; win-back at 20
    assert _impact("revenue", "customer_acquisition", new_this_month=60.0) == 30.0
    assert _impact("revenue", "customer_acquisition", new_this_month=80.0) == 40.0
    assert _impact("customer_retention", "win_back_campaign", churned=200.0) == 30.0


def test_impacts_never_pass_the_metrics_maximum() -> None:
    """satisfaction 9.8 with 30 % negative feedback: the formula says 5.36 %, but 9.8 can rise
    by 2.04 % at most (to 10)."""
    got = _impact(
        "customer_satisfaction",
        "support_quality_program",
        satisfaction_score=9.8,
        negative_feedback_share=30.0,
    )
    assert got == round(100 * 0.2 / 9.8, 2) == 2.04
    bounded = {
        "support_quality_program": ("customer_satisfaction", "satisfaction_score", 10.0),
        "customer_feedback_loop": ("customer_satisfaction", "satisfaction_score", 10.0),
        "workflow_automation": ("operational_efficiency", "agent_efficiency", 100.0),
        "failure_triage": ("operational_efficiency", "task_completion_rate", 100.0),
        "reliability_engineering": ("operational_efficiency", "system_uptime", 100.0),
    }
    for strategy, (area, metric, top) in bounded.items():
        for value in (0.5, 1.0, 5.0, 9.0, 9.5, 9.9, 50.0, 90.0, 99.0, 99.9):
            if value >= top:
                continue
            for share in (0.0, 30.0, 100.0):
                impact = _impact(
                    area, strategy, **{metric: value, "negative_feedback_share": share}
                )
                assert 0 <= impact <= round(100 * (top - value) / value, 2) + 0.01, (
                    strategy,
                    value,
                )


VOLUMES = (
    "current_month", "previous_month", "forecast_next_month", "revenue_at_risk", "total_active",
    "new_this_month", "at_risk", "churned", "active_at_start", "feedback_count",
    "stages_finished", "tasks_finished", "requests_timed",
)  # fmt: skip


@pytest.mark.parametrize("area", sorted(CATALOGUE))
def test_investments_scale_with_the_clients_volumes(area: str) -> None:
    """No fixed base cost: a client ten times as large (every volume x10, every rate and share
    the same) pays exactly ten times as much, for the same impacts."""
    base = priced(area, FIGURES)
    big = priced(area, {k: (v * 10 if k in VOLUMES and v is not None else v)
                        for k, v in FIGURES.items()})  # fmt: skip
    assert base.keys() == big.keys() == {m.name for m in CATALOGUE[area]}
    for name, (impact, cost) in base.items():
        assert big[name][0] == impact, name
        assert big[name][1] == pytest.approx(10 * cost), name


@pytest.mark.parametrize("area", sorted(CATALOGUE))
def test_impacts_follow_the_figures(area: str) -> None:
    """No constant impact: some figure change moves each strategy's impact."""
    base = priced(area, FIGURES)
    moved = dict.fromkeys(base, False)
    for name in FIGURES:
        for factor in (0.5, 1.5):
            value = FIGURES[name]
            assert value is not None
            other = priced(area, {**FIGURES, name: value * factor})
            for s in base:
                if s in other and other[s][0] != base[s][0]:
                    moved[s] = True
    assert all(moved.values()), moved


def test_null_inputs_are_not_generated_with_the_reason() -> None:
    made, missing = generate("customer_satisfaction", {**FIGURES, "revenue_at_risk": None})
    assert "retention_program" not in {s["strategy"] for s in made}
    assert {"strategy": "retention_program", "focus_area": "customer_satisfaction",
            "reason": "no data for revenue_at_risk"} in missing  # fmt: skip
    made, missing = generate("operational_efficiency", dict.fromkeys(FIGURES))
    assert made == [] and len(missing) == 4
    made, missing = generate("revenue", {**FIGURES, "total_active": 0.0})
    assert {m["strategy"] for m in missing} == {"upsell_program", "customer_acquisition"}
    assert "divides by" in missing[0]["reason"]


def test_strategies_priced_from_revenue_need_positive_revenue() -> None:
    """A month of refunds (negative revenue) would price them at a negative cost."""
    for area, names in (
        ("revenue", {"pricing_optimization", "upsell_program", "promotion_campaign",
                     "customer_acquisition"}),
        ("customer_satisfaction", {"retention_program", "loyalty_rewards"}),
        ("customer_retention", {"retention_program", "loyalty_rewards", "win_back_campaign"}),
    ):  # fmt: skip
        made, missing = generate(area, {**FIGURES, "current_month": -500.0})
        assert names <= {m["strategy"] for m in missing}, area
        assert all(s["investment_required"] >= 0 for s in made)
        assert all("current_month is -500.0 (not > 0)" in m["reason"] for m in missing
                   if m["strategy"] in names)  # fmt: skip


def test_figures_of_a_dashboard() -> None:
    dashboard = {
        "metrics": {
            "revenue": {"current_month": 1.0, "previous_month": None, "growth_rate": None,
                        "forecast_next_month": None},
            "customers": {"total_active": 3, "new_this_month": 1, "churn_rate": 0.0,
                          "satisfaction_score": None},
            "operations": {"task_completion_rate": None, "average_response_time": None,
                           "system_uptime": None, "agent_efficiency": None},
        },
        "details": {"revenue": {"top_customer_share": 50.0},
                    "customers": {"revenue_at_risk": 2.0, "at_risk": 1, "churned": 0,
                                  "active_at_start": 0, "negative_feedback_share": None,
                                  "feedback_count": 0}},
    }  # fmt: skip
    f = figures_of(dashboard)
    assert f["current_month"] == 1.0 and f["top_customer_share"] == 50.0
    assert f["revenue_at_risk"] == 2.0 and f["churn_rate"] == 0.0
    assert f["feedback_count"] is None  # no feedback: no figure, not 0
