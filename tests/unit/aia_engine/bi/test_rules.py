"""Trend thresholds and alert rules (docs/business-intelligence.md)."""

from __future__ import annotations

import pytest

from aia_engine.bi.rules import (
    Figures,
    alerts,
    customer_growth,
    operational_efficiency,
    revenue_trend,
    slope,
)


def test_slope_is_least_squares() -> None:
    assert slope([1.0, 3.0, 5.0]) == 2.0
    assert slope([2.0, 4.0, 3.0, 5.0]) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "monthly, expected",
    [
        ([100.0, 103.0, 106.0], "increasing"),  # slope 3 / mean 103 = 2.9 %
        ([100.0, 101.0, 102.0], "stable"),  # 1 / 101 = 0.99 %
        ([106.0, 103.0, 100.0], "decreasing"),
        ([0.0, 0.0, 0.0], None),
        ([100.0, 200.0], None),
        # only the last 6 months count: a fall long ago does not matter
        ([900.0, 10.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0], "stable"),
    ],
)
def test_revenue_trend(monthly: list[float], expected: str | None) -> None:
    assert revenue_trend(monthly) == expected


def test_customer_growth() -> None:
    assert customer_growth(5, 2, 100) == "growing"  # +3 %
    assert customer_growth(2, 2, 100) == "stable"
    assert customer_growth(3, 2, 100) == "stable"  # +1 % is not more than 1 %
    assert customer_growth(1, 3, 100) == "shrinking"
    assert customer_growth(2, 0, 0) == "growing"
    assert customer_growth(0, 0, 0) is None
    assert customer_growth(None, 0, 0) is None


def test_operational_efficiency() -> None:
    assert operational_efficiency(99.0, 97.5) == "improving"
    assert operational_efficiency(98.0, 97.5) == "stable"
    assert operational_efficiency(96.0, 97.5) == "declining"
    assert operational_efficiency(None, 97.5) is None


def rules_of(f: Figures) -> list[str]:
    return [a["rule"] for a in alerts(f)]


def test_no_figures_no_alerts() -> None:
    assert alerts(Figures()) == []


def test_each_rule_fires_on_its_threshold_only() -> None:
    assert rules_of(Figures(churn_week=2.4, churn_previous_week=2.1)) == ["churn_up_week_over_week"]
    assert rules_of(Figures(churn_week=2.1, churn_previous_week=2.1)) == []
    assert rules_of(
        Figures(growth_rate=-0.5, current_month=99.5, previous_month_to_date=100.0)
    ) == ["revenue_growth_negative"]
    assert rules_of(Figures(growth_rate=0.0, current_month=1.0, previous_month_to_date=1.0)) == []
    assert rules_of(Figures(task_completion_rate=94.99)) == ["task_completion_below_threshold"]
    assert rules_of(Figures(task_completion_rate=95.0)) == []
    assert rules_of(Figures(system_uptime=99.49)) == ["uptime_below_threshold"]
    assert rules_of(Figures(system_uptime=99.5)) == []
    assert rules_of(Figures(satisfaction_score=5.9)) == ["satisfaction_below_threshold"]
    assert rules_of(Figures(satisfaction_score=6.0)) == []
    assert rules_of(Figures(latest_complete_month=100.0, forecast_next_month=89.0)) == [
        "forecast_below_current_month"
    ]
    assert rules_of(Figures(latest_complete_month=100.0, forecast_next_month=90.0)) == []
    # a month to date far below the forecast's full month raises nothing by itself
    assert rules_of(Figures(current_month=10.0, forecast_next_month=500.0)) == []


def test_an_alert_names_its_figures_and_states_them() -> None:
    [alert] = alerts(Figures(churn_week=2.4, churn_previous_week=2.1))
    assert alert["figures"] == {"churn_week": 2.4, "churn_previous_week": 2.1}
    assert "0.3 points" in alert["message"] and "2.4%" in alert["message"]
    assert set(alert) == {"type", "message", "severity", "action_required", "rule", "figures"}
    [drop] = alerts(Figures(latest_complete_month=200.0, forecast_next_month=150.0))
    assert drop["figures"] == {
        "forecast_next_month": 150.0, "latest_complete_month": 200.0, "drop_pct": 25.0
    }  # fmt: skip
    assert drop["action_required"] is False
    [fall] = alerts(Figures(growth_rate=-20.0, current_month=80.0, previous_month_to_date=100.0))
    assert fall["figures"] == {
        "growth_rate": -20.0, "current_month": 80.0, "previous_month_to_date": 100.0
    }  # fmt: skip
    assert "80.00 vs 100.00" in fall["message"] and fall["severity"] == "high"


def test_a_huge_or_infinite_series_has_no_trend() -> None:
    assert revenue_trend([1e308, 1e308, 1e308]) is None
    assert revenue_trend([float("inf"), 1.0, 2.0]) is None
