"""The workflow of an optimization cycle (pure): one analysis stage per focus area, in parallel,
then strategy generation, budget-constrained selection and the plan.

    analyze_<area> ─┐
    analyze_<area> ─┼─▶ generate_strategies ─▶ select_strategies ─▶ build_plan
    analyze_<area> ─┘
"""

from __future__ import annotations

from typing import Any

TASK_TYPE = "business_optimization_cycle"
PLAN_STAGE = "build_plan"
ANALYSIS_AGENT = "bi_analysis_agent"
STRATEGY_AGENT = "bi_strategy_agent"
SELECTION_AGENT = "bi_selection_agent"
PLAN_AGENT = "bi_plan_agent"


def cycle_workflow(cycle: dict[str, Any]) -> dict[str, Any]:
    """The guide's workflow body for a normalized cycle request (`CycleRequest.normalized`)."""
    analyses = [f"analyze_{area}" for area in cycle["focus_areas"]]
    workflow: dict[str, Any] = {
        name: {
            "agent": ANALYSIS_AGENT,
            "task": f"Analyze the client's {area.replace('_', ' ')} figures",
            "dependencies": [],
            "params": {"focus_area": area},
            # A stage that waited past AIA_BI_DASHBOARD_WAIT_S for another's computation of the
            # same dashboard gets 503 (TransientError): it tries again, reading the cache.
            "retries": 2,
        }
        for name, area in zip(analyses, cycle["focus_areas"], strict=True)
    }
    workflow["generate_strategies"] = {
        "agent": STRATEGY_AGENT,
        "task": "Price the catalogue's strategies from the figures",
        "dependencies": analyses,
    }
    workflow["select_strategies"] = {
        "agent": SELECTION_AGENT,
        "task": "Choose strategies within budget, risk tolerance and time horizon",
        "dependencies": ["generate_strategies"],
    }
    workflow[PLAN_STAGE] = {
        "agent": PLAN_AGENT,
        "task": "Assemble the optimization plan",
        "dependencies": ["generate_strategies", "select_strategies"],
    }
    return workflow
