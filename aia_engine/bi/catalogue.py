"""The strategy catalogue of optimization cycles: per focus area, strategies whose expected impact
and investment are functions of the client's own figures (docs/bi-optimization.md lists them).

`expected_impact` is the expected percent change of the strategy's `target_metric` (an increase,
or for churn and response time a reduction); `investment_required` is in the client's currency
(the unit of its purchase amounts), scaled by the client's own volumes (revenue, customers,
feedback texts, stages, tasks, requests): no fixed base cost. The figures come from the
dashboard (`figures_of`, read through the dashboard cache for the cycle's pinned month). An
impact is floored at 0 (no positive floor: a strategy with no impact is left out as
`no_impact`) and, for a metric with a maximum (satisfaction 10, rates 100 %), never exceeds the
gap to it. A strategy whose inputs are null (no data), or not > 0 where it divides by them or
is priced from them, is not generated, and the plan says why: no figure is made up.
"""

from __future__ import annotations

import math
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


def _gap_pct(current: float, maximum: float) -> float:
    """The percent change that takes `current` to the metric's `maximum` (the most any strategy
    can improve it)."""
    return 100 * (maximum - current) / current


@dataclass(frozen=True)
class StrategyModel:
    name: str
    target_metric: str
    risk: str
    implementation_days: int
    inputs: tuple[str, ...]
    """Figures it needs (not null)."""
    positive: tuple[str, ...]
    """Of those, the ones it divides by or is priced from (must be > 0)."""
    impact: Callable[[F], float]
    """Floored at 0 by `generate` (no positive floor: 0 means no impact, and the plan says so)."""
    investment: Callable[[F], float]
    impact_formula: str
    investment_formula: str


def _arpc(f: F) -> float:
    """Revenue per active customer this month."""
    return f["current_month"] / f["total_active"]


def _shortfall_pct(f: F) -> float:
    """How far the forecast falls below this month's revenue, in percent of it (0 if not)."""
    return max(0.0, 100 * (f["current_month"] - f["forecast_next_month"]) / f["current_month"])


REVENUE = (
    StrategyModel(
        "pricing_optimization",
        "monthly_revenue",
        "medium",
        14,
        ("current_month", "growth_rate"),
        ("current_month",),
        lambda f: 10 * max(0.0, f["growth_rate"]) / (max(0.0, f["growth_rate"]) + 20),
        lambda f: 0.12 * f["current_month"],
        "10 * g / (g + 20), g = max(0, growth_rate): growing demand is less price-sensitive; "
        "0 without growth, rising towards 10 % (never reached)",
        "0.12 * current_month (analysis and repricing scale with the revenue base)",
    ),
    StrategyModel(
        "upsell_program",
        "monthly_revenue",
        "low",
        30,
        ("current_month", "top_customer_share", "total_active"),
        ("current_month", "total_active"),
        lambda f: 0.12 * min(100.0, 100 - f["top_customer_share"]),
        lambda f: 40 * f["total_active"],
        "0.12 * (100 - top_customer_share): room in the revenue not held by the top customer "
        "(0 when one customer holds all of it)",
        "40 per active customer",
    ),
    StrategyModel(
        "promotion_campaign",
        "monthly_revenue",
        "medium",
        21,
        ("current_month", "forecast_next_month"),
        ("current_month",),
        lambda f: 0.5 * min(100.0, _shortfall_pct(f)),
        lambda f: 0.10 * f["current_month"],
        "0.5 * min(100, forecast_shortfall_pct), forecast_shortfall_pct = max(0, 100 * "
        "(current_month - forecast_next_month) / current_month): recovers half of the forecast "
        "fall (0 when revenue is forecast to grow)",
        "0.10 * current_month",
    ),
    StrategyModel(
        "customer_acquisition",
        "monthly_revenue",
        "high",
        60,
        ("current_month", "total_active", "new_this_month"),
        ("current_month", "total_active"),
        lambda f: 0.5 * min(100.0, 100 * f["new_this_month"] / f["total_active"]),
        lambda f: 4.5 * _arpc(f) * f["new_this_month"],
        "0.5 * acquisition_pct, acquisition_pct = min(100, 100 * new_this_month / total_active): "
        "doubles half of this month's acquisition (0 when no customer is new)",
        "4.5 * revenue per active customer * new_this_month (three months of a 1.5x acquisition "
        "cost per new customer)",
    ),
)

RETENTION = StrategyModel(
    "retention_program",
    "monthly_revenue_retained",
    "low",
    30,
    ("current_month", "churn_rate", "revenue_at_risk", "at_risk"),
    ("current_month",),
    lambda f: min(
        40 * max(0.0, f["revenue_at_risk"]) / f["current_month"] + 0.2 * f["churn_rate"],
        100 * max(0.0, f["revenue_at_risk"]) / f["current_month"],
    ),
    lambda f: 0.25 * max(0.0, f["revenue_at_risk"]) + 60 * f["at_risk"],
    "min(100 * 0.4 * revenue_at_risk / current_month + 0.2 * churn_rate, 100 * revenue_at_risk "
    "/ current_month): keeps 40 % of the revenue at risk (more with higher churn), never more "
    "than all of it",
    "0.25 * revenue_at_risk + 60 per customer at risk",
)
LOYALTY = StrategyModel(
    "loyalty_rewards",
    "churn_rate",
    "medium",
    60,
    ("churn_rate", "current_month"),
    ("current_month",),
    lambda f: 0.5 * min(100.0, f["churn_rate"]),
    lambda f: 0.15 * f["current_month"],
    "0.5 * churn_rate percent less churn (at most 50 %; 0 without churn)",
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
        ("satisfaction_score", "feedback_count"),
        lambda f: min(
            100 * 0.5 * f["negative_feedback_share"] / 100 * 3.5 / f["satisfaction_score"],
            _gap_pct(f["satisfaction_score"], 10),
        ),
        lambda f: 120 * f["feedback_count"],
        "min(100 * (0.5 * negative_feedback_share / 100 * 3.5) / satisfaction_score, "
        "100 * (10 - satisfaction_score) / satisfaction_score): half of the negative feedback "
        "raised by 3.5 points, never past the score's maximum of 10",
        "120 per feedback text",
    ),
    StrategyModel(
        "customer_feedback_loop",
        "satisfaction_score",
        "low",
        45,
        ("satisfaction_score", "total_active"),
        ("satisfaction_score", "total_active"),
        lambda f: 0.2 * _gap_pct(f["satisfaction_score"], 10),
        lambda f: 15 * f["total_active"],
        "0.2 * 100 * (10 - satisfaction_score) / satisfaction_score: a fifth of the gap to 10",
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
        ("total_active", "current_month"),
        lambda f: 15 * f["churned"] / f["total_active"],
        lambda f: 80 * f["churned"],
        "100 * 0.15 * churned / total_active: 15 % of churned customers back at the mean revenue "
        "per active customer (0 when none churned)",
        "80 per churned customer",
    ),
)


def _failed(f: F, count: str, rate: str) -> float:
    """How many of `count` failed, from the success `rate` (percent)."""
    return f[count] * (100 - f[rate]) / 100


OPERATIONS = (
    StrategyModel(
        "workflow_automation",
        "agent_efficiency",
        "medium",
        30,
        ("agent_efficiency", "stages_finished"),
        ("agent_efficiency", "stages_finished"),
        lambda f: min(
            50 * (100 - f["agent_efficiency"]) / f["agent_efficiency"],
            _gap_pct(f["agent_efficiency"], 100),
        ),
        lambda f: 40 * _failed(f, "stages_finished", "agent_efficiency"),
        "min(100 * 0.5 * (100 - agent_efficiency) / agent_efficiency, 100 * (100 - "
        "agent_efficiency) / agent_efficiency): halves the stage failure rate, never past 100 %",
        "40 per failed stage in the window (stages_finished * (100 - agent_efficiency) / 100)",
    ),
    StrategyModel(
        "failure_triage",
        "task_completion_rate",
        "low",
        7,
        ("task_completion_rate", "tasks_finished"),
        ("task_completion_rate", "tasks_finished"),
        lambda f: min(
            60 * (100 - f["task_completion_rate"]) / f["task_completion_rate"],
            _gap_pct(f["task_completion_rate"], 100),
        ),
        lambda f: 30 * _failed(f, "tasks_finished", "task_completion_rate"),
        "min(100 * 0.6 * (100 - task_completion_rate) / task_completion_rate, 100 * (100 - "
        "task_completion_rate) / task_completion_rate): 60 % of failing tasks fixed",
        "30 per failed task in the window (tasks_finished * (100 - task_completion_rate) / 100)",
    ),
    StrategyModel(
        "reliability_engineering",
        "system_uptime",
        "low",
        45,
        ("system_uptime", "requests_timed"),
        ("system_uptime", "requests_timed"),
        lambda f: min(
            50 * (100 - f["system_uptime"]) / f["system_uptime"],
            _gap_pct(f["system_uptime"], 100),
        ),
        lambda f: 5 * _failed(f, "requests_timed", "system_uptime"),
        "min(100 * 0.5 * (100 - system_uptime) / system_uptime, 100 * (100 - system_uptime) / "
        "system_uptime): halves downtime",
        "5 per request exposed to downtime (requests_timed * (100 - system_uptime) / 100)",
    ),
    StrategyModel(
        "response_time_tuning",
        "average_response_time",
        "low",
        14,
        ("average_response_time", "requests_timed"),
        ("average_response_time", "requests_timed"),
        lambda f: 30 * max(0.0, f["average_response_time"] - 0.1) / f["average_response_time"],
        lambda f: 0.5 * f["requests_timed"] * max(0.0, f["average_response_time"] - 0.1),
        "100 * 0.3 * max(0, average_response_time - 0.1 s) / average_response_time: 30 % of the "
        "time above 100 ms (below 30 %, the most a reduction can be is 100 %)",
        "0.5 per request-second above 100 ms (requests_timed * max(0, average_response_time - "
        "0.1))",
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
        "tasks_finished": operations.get("tasks_finished"),
        "requests_timed": operations.get("requests_timed"),
    }


def _positive(value: float | None) -> bool:
    return value is not None and value > 0


def generate(area: str, figures: Figures) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(strategies, not generated) for `area`: each strategy with its impact and investment
    computed from `figures`; each one not generated with the reason."""
    made: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for model in CATALOGUE[area]:
        absent = [name for name in model.inputs if figures.get(name) is None]
        bad = [
            name for name in model.positive if name not in absent and not _positive(figures[name])
        ]
        if absent or bad:
            why = (
                f"no data for {', '.join(absent)}"
                if absent
                else ", ".join(f"{name} is {figures[name]}" for name in bad)
                + " (not > 0), which its formula divides by or is priced from"
            )
            missing.append({"strategy": model.name, "focus_area": area, "reason": why})
            continue
        f = {name: float(figures[name]) for name in model.inputs}  # type: ignore[arg-type]
        impact, investment = max(0.0, float(model.impact(f))), float(model.investment(f))
        if not (math.isfinite(impact) and math.isfinite(investment)) or investment < 0:
            missing.append(
                {
                    "strategy": model.name,
                    "focus_area": area,
                    "reason": f"its investment from these figures is {investment}, not a cost",
                }
            )
            continue
        made.append(
            {
                "strategy": model.name,
                "focus_area": area,
                "group": GROUPS[area],
                "target_metric": model.target_metric,
                "expected_impact": round(impact, 2),
                "investment_required": round(investment, 2),
                "implementation_time": f"{model.implementation_days}_days",
                "implementation_days": model.implementation_days,
                "risk": model.risk,
                "inputs": {name: figures[name] for name in model.inputs},
                "impact_formula": model.impact_formula,
                "investment_formula": model.investment_formula,
            }
        )
    return made, missing
