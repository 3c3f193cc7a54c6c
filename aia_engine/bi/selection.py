"""Budget-constrained selection of a cycle's strategies, and the plan that says why.

Filters first (risk above `risk_tolerance`, implementation longer than the time horizon, a
negative investment, no positive impact, investment alone above the budget), then the exact knapsack (knapsack.py) over
what is left. Every strategy ends up chosen or left out with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aia_engine.bi.catalogue import RISK_LEVELS
from aia_engine.bi.knapsack import Item, best_selection

GROUP_ORDER = ("revenue_strategies", "customer_strategies", "operational_strategies")


def _ratio(s: dict[str, Any]) -> str:
    """Its impact per unit of investment, in words."""
    cost = s["investment_required"]
    if cost == 0:
        return "it needs no investment"
    return f"impact per unit of investment {round(s['expected_impact'] / cost, 6)}"


def select(
    strategies: Sequence[dict[str, Any]],
    *,
    budget: float,
    risk_tolerance: str,
    horizon_days: int,
) -> dict[str, Any]:
    """Decisions for every strategy (in the given order) and the totals of the chosen set."""
    allowed = RISK_LEVELS[: RISK_LEVELS.index(risk_tolerance) + 1]
    decisions: list[dict[str, Any]] = []
    eligible: list[dict[str, Any]] = []
    for s in strategies:
        reason = None
        if s["risk"] not in allowed:
            reason = (
                "too_risky",
                f"risk {s['risk']} is above the tolerance {risk_tolerance}",
            )
        elif s["implementation_days"] > horizon_days:
            reason = (
                "too_slow",
                f"takes {s['implementation_days']} days, longer than the {horizon_days}-day horizon",
            )
        elif s["investment_required"] < 0:
            reason = (
                "invalid_cost",
                f"its investment {s['investment_required']:.2f} is negative, which no cost is",
            )
        elif s["expected_impact"] <= 0:
            reason = ("no_impact", "its expected impact from the current figures is 0")
        elif s["investment_required"] > budget:
            reason = (
                "over_budget",
                f"needs {s['investment_required']:.2f}, more than the whole budget of {budget:.2f}",
            )
        if reason is None:
            eligible.append(s)
        else:
            decisions.append({**s, "chosen": False, "reason": reason[0], "explanation": reason[1]})
    # Stable order for the knapsack's tie-breaking: by strategy name.
    eligible.sort(key=lambda s: s["strategy"])
    items = [Item(s["strategy"], s["expected_impact"], s["investment_required"]) for s in eligible]
    best = best_selection(items, budget)
    chosen = set(best.chosen)
    remaining = round(budget - best.total_cost, 2)
    for s in eligible:
        ratio = _ratio(s)
        if s["strategy"] in chosen:
            decisions.append(
                {
                    **s,
                    "chosen": True,
                    "reason": "in_best_set",
                    "explanation": "part of the set with the highest total impact "
                    f"({best.total_value:.2f}) within the budget; {ratio}",
                }
            )
        else:
            decisions.append(
                {
                    **s,
                    "chosen": False,
                    "reason": "lower_value_per_cost",
                    "explanation": f"fits the budget alone, but with the chosen set only "
                    f"{remaining:.2f} is left for its {s['investment_required']:.2f}, and no set "
                    f"including it yields more than {best.total_value:.2f}; {ratio}",
                }
            )
    order = {s["strategy"]: i for i, s in enumerate(strategies)}
    decisions.sort(key=lambda d: order[d["strategy"]])
    return {
        "decisions": decisions,
        "chosen": [s["strategy"] for s in strategies if s["strategy"] in chosen],
        "total_investment": round(best.total_cost, 2),
        "total_expected_impact": round(best.total_value, 2),
        "budget_limit": budget,
        "budget_remaining": remaining,
        "risk_tolerance": risk_tolerance,
        "horizon_days": horizon_days,
        "method": "exact 0/1 knapsack (Pareto frontier of cost and impact, exact arithmetic)",
    }


def plan_of(selection: dict[str, Any], not_generated: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The guide's optimization_plan: chosen strategies per group, plus every decision."""
    plan: dict[str, Any] = {group: [] for group in GROUP_ORDER}
    for d in selection["decisions"]:
        if d["chosen"]:
            plan[d["group"]].append(
                {
                    "strategy": d["strategy"],
                    "expected_impact": d["expected_impact"],
                    "investment_required": d["investment_required"],
                    "implementation_time": d["implementation_time"],
                    "target_metric": d["target_metric"],
                    "risk": d["risk"],
                    "focus_area": d["focus_area"],
                    "reason": d["explanation"],
                }
            )
    plan["left_out"] = [
        {
            "strategy": d["strategy"],
            "expected_impact": d["expected_impact"],
            "investment_required": d["investment_required"],
            "implementation_time": d["implementation_time"],
            "target_metric": d["target_metric"],
            "risk": d["risk"],
            "focus_area": d["focus_area"],
            "reason": d["reason"],
            "explanation": d["explanation"],
        }
        for d in selection["decisions"]
        if not d["chosen"]
    ]
    plan["not_generated"] = list(not_generated)
    for key in (
        "total_investment",
        "total_expected_impact",
        "budget_limit",
        "budget_remaining",
        "risk_tolerance",
        "horizon_days",
        "method",
    ):
        plan[key] = selection[key]
    return plan
