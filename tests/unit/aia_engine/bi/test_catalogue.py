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
}


def priced(area: str, figures: dict[str, float | None]) -> dict[str, tuple[float, float]]:
    made, _ = generate(area, figures)
    return {s["strategy"]: (s["expected_impact"], s["investment_required"]) for s in made}


def test_revenue_strategies_by_hand() -> None:
    got = priced("revenue", FIGURES)
    assert got["pricing_optimization"] == (9.5, 2400.0)  # 2 + 0.3*25; 0.12*20000
    assert got["upsell_program"] == (7.2, 4000.0)  # 0.12*(100-40); 40*100
    assert got["promotion_campaign"] == (6.0, 2000.0)  # 1 + 0.5*10; 0.1*20000
    assert got["customer_acquisition"] == (6.0, 9000.0)  # 1 + 50*10/100; 4.5*200*10


def test_customer_and_operations_strategies_by_hand() -> None:
    got = priced("customer_satisfaction", FIGURES)
    assert got["retention_program"] == (11.6, 1970.0)  # 40*5000/20000 + 0.2*8; 1250 + 720
    assert got["support_quality_program"] == (5.0, 3600.0)  # 100*0.5*0.2*3.5/7; 120*30
    assert got["customer_feedback_loop"] == (8.57, 1500.0)  # 100*0.2*3/7; 15*100
    assert got["loyalty_rewards"] == (12.0, 3000.0)  # 1.5*8; 0.15*20000
    assert priced("customer_retention", FIGURES)["win_back_campaign"] == (0.9, 480.0)
    ops = priced("operational_efficiency", FIGURES)
    assert ops["workflow_automation"] == (12.5, 9500.0)  # 50*20/80; 1500+400*20
    assert ops["failure_triage"] == (6.67, 3300.0)  # 60*10/90; 800+250*10
    assert ops["reliability_engineering"] == (0.51, 10000.0)  # 50*1/99; 2000+8000*1
    assert ops["response_time_tuning"] == (24.0, 2500.0)  # 30*0.4/0.5; 1000+3000*0.5


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
