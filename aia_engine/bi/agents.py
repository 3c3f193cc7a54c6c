"""The optimization cycle's agents (registered built-ins, run in the worker):

- `bi_analysis_agent` (params.focus_area): the figures of one focus area, read from the
  dashboard of the task's client for the cycle's pinned month, through the dashboard cache
  (task_figures.py: one computation for all the cycle's stages; the client comes from the
  task's row, never from params).
- `bi_strategy_agent`: the catalogue's strategies priced from those figures (catalogue.py).
- `bi_selection_agent`: the exact knapsack under the cycle's constraints (selection.py).
- `bi_plan_agent`: the guide's optimization_plan, with every decision's reason.

They are internal (`@agent(..., internal=True)`): a workflow submitted through /tasks/submit,
/tasks/orchestrate, /tasks/batch-submit or an operator task type that names one is refused (E074), so
they run only in cycles, under the daily cycle quota. The cycle's constraints and pinned month
are read from `requirements.cycle` (written by the execute-cycle endpoint, validated again
here).
"""

from __future__ import annotations

import re
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent
from aia_engine.bi.catalogue import AREA_FIGURES, CATALOGUE, figures_of, generate
from aia_engine.bi.cycle_request import CycleRequest
from aia_engine.bi.selection import plan_of, select
from aia_engine.errors import AgentError, InvalidRequest
from aia_engine.validation import validate_model

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _cycle(ctx: AgentContext) -> CycleRequest:
    raw = ctx.requirements.get("cycle")
    try:
        return validate_model(CycleRequest, _request_part(raw), where="requirements.cycle")
    except InvalidRequest as exc:
        raise AgentError(f"requirements.cycle: {exc.message}", **exc.details) from exc


def _pinned_month(ctx: AgentContext) -> str:
    """The reference month pinned when the cycle was submitted (requirements.cycle.month)."""
    raw = ctx.requirements.get("cycle")
    month = raw.get("month") if isinstance(raw, dict) else None
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise AgentError(
            "requirements.cycle.month must be the YYYY-MM month pinned at submission",
            field="requirements.cycle.month",
            provided_value=str(month)[:20],
        )
    return month


def _request_part(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    return {k: raw[k] for k in ("cycle_type", "focus_areas", "constraints") if k in raw}


def _upstream(ctx: AgentContext, key: str) -> dict[str, Any]:
    for output in ctx.inputs.values():
        if key in output:
            return dict(output)
    raise AgentError(f"no upstream stage gave {key!r}", missing=key)


@agent(
    "bi_analysis_agent",
    "The business figures of one focus area (params.focus_area: revenue, "
    "customer_satisfaction, customer_retention, operational_efficiency) from the task's "
    "client's dashboard (knowledge graph and engine records).",
    internal=True,
)
def analyze(ctx: AgentContext) -> dict[str, Any]:
    area = ctx.params.get("focus_area")
    if area not in CATALOGUE:
        raise AgentError(
            f"params.focus_area must be one of {sorted(CATALOGUE)}",
            field="params.focus_area",
            provided_value=area,
        )
    if ctx.business_figures is None:
        raise AgentError("business figures are not available to this stage")
    dashboard = ctx.business_figures(_pinned_month(ctx))
    figures = figures_of(dashboard)
    period = dashboard.get("details", {}).get("period", {})
    return {
        "focus_area": area,
        "figures": {name: figures.get(name) for name in AREA_FIGURES[area]},
        "period": period,
        "dashboard_id": dashboard["dashboard_id"],
        "generated_at": dashboard["generated_at"],
        "cache": dashboard.get("details", {}).get("cache"),
        "trends": dashboard.get("trends", {}),
    }


@agent(
    "bi_strategy_agent",
    "The strategy catalogue priced from upstream bi_analysis_agent figures: expected impact "
    "and investment of each strategy as functions of the client's figures.",
    internal=True,
)
def strategies(ctx: AgentContext) -> dict[str, Any]:
    cycle = _cycle(ctx)
    by_area = {out["focus_area"]: out for out in ctx.inputs.values() if "focus_area" in out}
    made: list[dict[str, Any]] = []
    not_generated: list[dict[str, Any]] = []
    seen: set[str] = set()
    for area in cycle.focus_areas:
        analysis = by_area.get(area)
        if analysis is None:
            raise AgentError(f"no analysis of focus area {area!r} upstream", focus_area=area)
        found, missing = generate(area, analysis["figures"])
        for s in found:
            if s["strategy"] not in seen:  # e.g. retention_program under two customer areas
                seen.add(s["strategy"])
                made.append(s)
        for m in missing:
            if m["strategy"] not in seen:
                seen.add(m["strategy"])
                not_generated.append(m)
    figures = {
        "month": _pinned_month(ctx),
        "dashboard_ids": sorted({out["dashboard_id"] for out in by_area.values()}),
        "generated_at": sorted({out["generated_at"] for out in by_area.values()}),
    }
    return {"strategies": made, "not_generated": not_generated, "figures": figures}


@agent(
    "bi_selection_agent",
    "Chooses strategies with an exact 0/1 knapsack: most total expected impact with total "
    "investment <= budget_limit, after filtering by risk_tolerance and time_horizon.",
    internal=True,
)
def selection(ctx: AgentContext) -> dict[str, Any]:
    cycle = _cycle(ctx)
    found = _upstream(ctx, "strategies")
    chosen = select(
        found["strategies"],
        budget=cycle.constraints.budget_limit,
        risk_tolerance=cycle.constraints.risk_tolerance,
        horizon_days=cycle.horizon_days,
    )
    return {"selection": chosen}


@agent(
    "bi_plan_agent",
    "Assembles the optimization plan (revenue, customer and operational strategies) from the "
    "selection, with why each strategy was chosen, left out or not generated.",
    internal=True,
)
def plan(ctx: AgentContext) -> dict[str, Any]:
    cycle = _cycle(ctx)
    chosen = _upstream(ctx, "selection")["selection"]
    generated = _upstream(ctx, "strategies")
    body = plan_of(chosen, generated["not_generated"])
    # Which dashboard the figures came from: its month and computation (one generated_at when
    # every stage read the same cache entry).
    body["figures"] = generated.get("figures", {})
    return {
        "optimization_plan": body,
        "cycle_type": cycle.cycle_type,
        "focus_areas": list(cycle.focus_areas),
    }
