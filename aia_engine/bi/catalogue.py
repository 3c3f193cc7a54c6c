"""The strategy catalogue of optimization cycles: per focus area, strategies whose expected impact
and investment are functions of the client's own figures (docs/bi-optimization.md lists them).

`expected_impact` is the expected percent change of the strategy's `target_metric` (an increase,
or for churn and response time a reduction); `investment_required` is in the client's currency
(the unit of its purchase amounts). The figures come from the dashboard
(`aia_engine.bi.dashboard.compute_dashboard`, see `figures_of`). A strategy whose inputs are
null (no data) or zero where it divides by them is not generated, and the plan says why: no
figure is made up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Figures = Mapping[str, float | None]
F = dict[str, float]

RISK_LEVELS = ("low", "medium", "high")
GROUPS = {
    "revenue": "revenue_strategies",
    "customer_satisfaction": "customer_strategies",
    "customer_retention": "customer_strategies",
    "operational_efficiency": "operational_strategies",
}


def _clamp(x: float, low: float, high: float) -> float:
    return max(low, min(high, x))


@dataclass(frozen=True)
class StrategyModel:
    name: str
    target_metric: str
    risk: str
    implementation_days: int
    inputs: tuple[str, ...]
    """Figures it needs (not null)."""
    positive: tuple[str, ...]
    """Of those, the ones it divides by (must be > 0)."""
    impact: Callable[[F], float]
    investment: Callable[[F], float]
    impact_formula: str
    investment_formula: str


def _arpc(f: F) -> float:
    """Revenue per active customer this month."""
    return f["current_month"] / f["total_active"]


REVENUE = (
    StrategyModel(
        "pricing_optimization",
        "monthly_revenue",
        "medium",
        14,
        ("current_month", "growth_rate"),
        (),
        lambda f: _clamp(2 + 0.3 * f["growth_rate"], 0.5, 12),
        lambda f: 0.12 * f["current_month"],
        "clamp(2 + 0.3 * growth_rate, 0.5, 12): growing demand is less price-sensitive",
        "0.12 * current_month (analysis and repricing scale with the revenue base)",
    ),
    StrategyModel(
        "upsell_program",
        "monthly_revenue",
        "low",
        30,
        ("current_month", "top_customer_share", "total_active"),
        ("total_active",),
        lambda f: _clamp(0.12 * (100 - f["top_customer_share"]), 0.5, 12),
        lambda f: 40 * f["total_active"],
        "clamp(0.12 * (100 - top_customer_share), 0.5, 12): room in the revenue not held by the "
        "top customer",
        "40 per active customer",
    ),
    StrategyModel(
        "promotion_campaign",
        "monthly_revenue",
        "medium",
        21,
        ("current_month", "forecast_next_month"),
        ("current_month",),
        lambda f: _clamp(
            1
            + 0.5
            * max(0.0, 100 * (f["current_month"] - f["forecast_next_month"]))
            / f["current_month"],
            1,
            20,
        ),
        lambda f: 0.10 * f["current_month"],
        "clamp(1 + 0.5 * forecast_shortfall_pct, 1, 20), forecast_shortfall_pct = "
        "max(0, 100 * (current_month - forecast_next_month) / current_month)",
        "0.10 * current_month",
    ),
    StrategyModel(
        "customer_acquisition",
        "monthly_revenue",
        "high",
        60,
        ("current_month", "total_active", "new_this_month"),
        ("total_active",),
        lambda f: _clamp(1 + 50 * f["new_this_month"] / f["total_active"], 1, 25),
        lambda f: 4.5 * _arpc(f) * max(f["new_this_month"], 1.0),
        "clamp(1 + 0.5 * acquisition_pct, 1, 25), acquisition_pct = 100 * new_this_month / "
        "total_active",
        "4.5 * revenue per active customer * max(new_this_month, 1) (three months of a 1.5x "
        "acquisition cost per new customer)",
    ),
)

RETENTION = StrategyModel(
    "retention_program",
    "monthly_revenue_retained",
    "low",
    30,
    ("current_month", "churn_rate", "revenue_at_risk", "at_risk"),
    ("current_month",),
    lambda f: _clamp(40 * f["revenue_at_risk"] / f["current_month"] + 0.2 * f["churn_rate"], 0, 30),
    lambda f: 0.25 * f["revenue_at_risk"] + 60 * f["at_risk"],
    "clamp(100 * 0.4 * revenue_at_risk / current_month + 0.2 * churn_rate, 0, 30): keeps 40 % "
    "of the revenue at risk",
    "0.25 * revenue_at_risk + 60 per customer at risk",
)
LOYALTY = StrategyModel(
    "loyalty_rewards",
    "churn_rate",
    "medium",
    60,
    ("churn_rate", "current_month"),
    (),
    lambda f: _clamp(1.5 * f["churn_rate"], 0, 30),
    lambda f: 0.15 * f["current_month"],
    "clamp(1.5 * churn_rate, 0, 30) percent less churn",
    "0.15 * current_month (three months of 5 % rewards)",
)
CUSTOMER_SATISFACTION = (
    RETENTION,
    StrategyModel(
        "support_quality_program",
        "satisfaction_score",
        "low",
        21,
        ("satisfaction_score", "negative_feedback_share", "feedback_count"),
        ("satisfaction_score",),
        lambda f: 100 * 0.5 * f["negative_feedback_share"] / 100 * 3.5 / f["satisfaction_score"],
        lambda f: 120 * f["feedback_count"],
        "100 * (0.5 * negative_feedback_share / 100 * 3.5) / satisfaction_score: half of the "
        "negative feedback raised by 3.5 points",
        "120 per feedback text",
    ),
    StrategyModel(
        "customer_feedback_loop",
        "satisfaction_score",
        "low",
        45,
        ("satisfaction_score", "total_active"),
        ("satisfaction_score",),
        lambda f: _clamp(
            100 * 0.2 * (10 - f["satisfaction_score"]) / f["satisfaction_score"], 0, 20
        ),
        lambda f: 15 * f["total_active"],
        "clamp(100 * 0.2 * (10 - satisfaction_score) / satisfaction_score, 0, 20): a fifth of the "
        "gap to 10",
        "15 per active customer",
    ),
    LOYALTY,
)
CUSTOMER_RETENTION = (
    RETENTION,
    LOYALTY,
    StrategyModel(
        "win_back_campaign",
        "monthly_revenue",
        "medium",
        30,
        ("churned", "total_active", "current_month"),
        ("total_active",),
        lambda f: _clamp(15 * f["churned"] / f["total_active"], 0, 20),
        lambda f: 80 * f["churned"],
        "clamp(100 * 0.15 * churned / total_active, 0, 20): 15 % of churned customers back at the "
        "mean revenue per active customer",
        "80 per churned customer",
    ),
)
OPERATIONS = (
    StrategyModel(
        "workflow_automation",
        "agent_efficiency",
        "medium",
        30,
        ("agent_efficiency",),
        ("agent_efficiency",),
        lambda f: 50 * (100 - f["agent_efficiency"]) / f["agent_efficiency"],
        lambda f: 1500 + 400 * (100 - f["agent_efficiency"]),
        "100 * 0.5 * (100 - agent_efficiency) / agent_efficiency: halves the stage failure rate",
        "1500 + 400 per point of stage failure rate",
    ),
    StrategyModel(
        "failure_triage",
        "task_completion_rate",
        "low",
        7,
        ("task_completion_rate",),
        ("task_completion_rate",),
        lambda f: 60 * (100 - f["task_completion_rate"]) / f["task_completion_rate"],
        lambda f: 800 + 250 * (100 - f["task_completion_rate"]),
        "100 * 0.6 * (100 - task_completion_rate) / task_completion_rate: 60 % of failing tasks "
        "fixed",
        "800 + 250 per point of task failure rate",
    ),
    StrategyModel(
        "reliability_engineering",
        "system_uptime",
        "low",
        45,
        ("system_uptime",),
        ("system_uptime",),
        lambda f: 50 * (100 - f["system_uptime"]) / f["system_uptime"],
        lambda f: 2000 + 8000 * (100 - f["system_uptime"]),
        "100 * 0.5 * (100 - system_uptime) / system_uptime: halves downtime",
        "2000 + 8000 per point of downtime",
    ),
    StrategyModel(
        "response_time_tuning",
        "average_response_time",
        "low",
        14,
        ("average_response_time",),
        ("average_response_time",),
        lambda f: 30 * max(0.0, f["average_response_time"] - 0.1) / f["average_response_time"],
        lambda f: 1000 + 3000 * f["average_response_time"],
        "100 * 0.3 * max(0, average_response_time - 0.1 s) / average_response_time: 30 % of the "
        "time above 100 ms",
        "1000 + 3000 per second of mean response time",
    ),
)

CATALOGUE: dict[str, tuple[StrategyModel, ...]] = {
    "revenue": REVENUE,
    "customer_satisfaction": CUSTOMER_SATISFACTION,
    "customer_retention": CUSTOMER_RETENTION,
    "operational_efficiency": OPERATIONS,
}

AREA_FIGURES: dict[str, tuple[str, ...]] = {
    area: tuple(sorted({name for model in models for name in model.inputs}))
    for area, models in CATALOGUE.items()
}


def figures_of(dashboard: Mapping[str, Any]) -> dict[str, float | None]:
    """The flat figures the catalogue reads, from a dashboard (`compute_dashboard`'s shape)."""
    m, d = dashboard["metrics"], dashboard.get("details", {})
    customers, operations = d.get("customers", {}), d.get("operations", {})
    return {
        **m["revenue"],
        **m["customers"],
        **m["operations"],
        "top_customer_share": d.get("revenue", {}).get("top_customer_share"),
        "revenue_at_risk": customers.get("revenue_at_risk"),
        "at_risk": customers.get("at_risk"),
        "churned": customers.get("churned"),
        "active_at_start": customers.get("active_at_start"),
        "negative_feedback_share": customers.get("negative_feedback_share"),
        "feedback_count": customers.get("feedback_count") or None,
        "stages_finished": operations.get("stages_finished"),
    }


def generate(area: str, figures: Figures) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(strategies, not generated) for `area`: each strategy with its impact and investment
    computed from `figures`; each one not generated with the reason."""
    made: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for model in CATALOGUE[area]:
        absent = [name for name in model.inputs if figures.get(name) is None]
        zero = [name for name in model.positive if name not in absent and not figures[name]]
        if absent or zero:
            why = (
                f"no data for {', '.join(absent)}"
                if absent
                else f"{', '.join(zero)} is 0, which its formula divides by"
            )
            missing.append({"strategy": model.name, "focus_area": area, "reason": why})
            continue
        f = {name: float(figures[name]) for name in model.inputs}  # type: ignore[arg-type]
        made.append(
            {
                "strategy": model.name,
                "focus_area": area,
                "group": GROUPS[area],
                "target_metric": model.target_metric,
                "expected_impact": round(float(model.impact(f)), 2),
                "investment_required": round(float(model.investment(f)), 2),
                "implementation_time": f"{model.implementation_days}_days",
                "implementation_days": model.implementation_days,
                "risk": model.risk,
                "inputs": {name: figures[name] for name in model.inputs},
                "impact_formula": model.impact_formula,
                "investment_formula": model.investment_formula,
            }
        )
    return made, missing
