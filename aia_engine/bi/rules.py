"""Trends and alerts from the dashboard's figures. Pure: figures in, labels and alerts out.

Every threshold is a named constant here and a line of docs/business-intelligence.md. A trend or
alert whose figures are missing (null) is null or not raised: no data is never good or bad news.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REVENUE_SLOPE_PCT = 2.0
"""revenue_trend: least-squares slope of the last 6 months, as % of their mean per month."""
REVENUE_TREND_MONTHS = 6
CUSTOMER_NET_PCT = 1.0
"""customer_growth: (new - churned) as % of the customers active at the month's start."""
EFFICIENCY_POINTS = 1.0
"""operational_efficiency: completion rate this week minus last week, in points."""
MIN_COMPLETION_RATE = 95.0
MIN_UPTIME = 99.5
MIN_SATISFACTION = 6.0
FORECAST_DROP_PCT = 10.0


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of values against 0, 1, 2, ..."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def revenue_trend(monthly: Sequence[float]) -> str | None:
    """increasing / decreasing / stable from the last 6 months' slope relative to their mean;
    None with fewer than 3 months (or a mean of 0: no scale to compare the slope with)."""
    last = list(monthly[-REVENUE_TREND_MONTHS:])
    if len(last) < 3:
        return None
    mean = sum(last) / len(last)
    if mean == 0 or not math.isfinite(mean):
        return None
    relative = 100 * slope(last) / abs(mean)
    if not math.isfinite(relative):
        return None
    if relative > REVENUE_SLOPE_PCT:
        return "increasing"
    if relative < -REVENUE_SLOPE_PCT:
        return "decreasing"
    return "stable"


def customer_growth(
    new: int | None, churned: int | None, active_at_start: int | None
) -> str | None:
    """growing / shrinking / stable from new customers minus churned ones this month, relative to
    the customers active at its start (any net change counts when none were)."""
    if new is None or churned is None or active_at_start is None:
        return None
    if active_at_start == 0 and new == 0:
        return None  # nobody to grow from, nobody arrived: no evidence either way
    net = new - churned
    relative = 100 * net / active_at_start if active_at_start else (100.0 if net > 0 else 0.0)
    if relative > CUSTOMER_NET_PCT:
        return "growing"
    if relative < -CUSTOMER_NET_PCT:
        return "shrinking"
    return "stable"


def operational_efficiency(this_week: float | None, last_week: float | None) -> str | None:
    if this_week is None or last_week is None:
        return None
    if this_week - last_week > EFFICIENCY_POINTS:
        return "improving"
    if this_week - last_week < -EFFICIENCY_POINTS:
        return "declining"
    return "stable"


@dataclass(frozen=True)
class Figures:
    """What the alert rules read (each None when there is no data for it)."""

    churn_week: float | None = None
    churn_previous_week: float | None = None
    growth_rate: float | None = None
    """Like for like: the month to date against the previous month over the same days."""
    current_month: float | None = None
    previous_month_to_date: float | None = None
    """The previous month over the reference month's days so far (all of it when complete)."""
    latest_complete_month: float | None = None
    """The reference month's revenue when it is complete, else the previous month's."""
    forecast_next_month: float | None = None
    task_completion_rate: float | None = None
    system_uptime: float | None = None
    satisfaction_score: float | None = None


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _alert(
    rule: str, kind: str, severity: str, action: bool, message: str, figures: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "severity": severity,
        "action_required": action,
        "rule": rule,
        "figures": figures,
    }


def alerts(f: Figures) -> list[dict[str, Any]]:
    """The alerts the figures raise, in a fixed order (see the module's constants)."""
    out: list[dict[str, Any]] = []
    if f.churn_week is not None and f.churn_previous_week is not None:
        rise = round(f.churn_week - f.churn_previous_week, 2)
        if rise > 0:
            out.append(
                _alert(
                    "churn_up_week_over_week",
                    "warning",
                    "high" if rise >= 1 else "medium",
                    True,
                    f"Customer churn rate increased {rise:g} points this week "
                    f"({f.churn_week:g}% vs {f.churn_previous_week:g}% the week before)",
                    {"churn_week": f.churn_week, "churn_previous_week": f.churn_previous_week},
                )
            )
    if f.growth_rate is not None and f.growth_rate < 0:
        out.append(
            _alert(
                "revenue_growth_negative",
                "warning",
                "high" if f.growth_rate <= -10 else "medium",
                True,
                f"Revenue fell {abs(f.growth_rate):g}% month over month, like for like "
                f"({_money(f.current_month)} vs {_money(f.previous_month_to_date)} over the "
                "same days of the previous month)",
                {
                    "growth_rate": f.growth_rate,
                    "current_month": f.current_month,
                    "previous_month_to_date": f.previous_month_to_date,
                },
            )
        )
    if f.task_completion_rate is not None and f.task_completion_rate < MIN_COMPLETION_RATE:
        out.append(
            _alert(
                "task_completion_below_threshold",
                "warning",
                "high",
                True,
                f"Task completion rate is {f.task_completion_rate:g}% "
                f"(threshold {MIN_COMPLETION_RATE:g}%)",
                {"task_completion_rate": f.task_completion_rate, "threshold": MIN_COMPLETION_RATE},
            )
        )
    if f.system_uptime is not None and f.system_uptime < MIN_UPTIME:
        out.append(
            _alert(
                "uptime_below_threshold",
                "critical",
                "high",
                True,
                f"System uptime is {f.system_uptime:g}% (threshold {MIN_UPTIME:g}%)",
                {"system_uptime": f.system_uptime, "threshold": MIN_UPTIME},
            )
        )
    if f.satisfaction_score is not None and f.satisfaction_score < MIN_SATISFACTION:
        out.append(
            _alert(
                "satisfaction_below_threshold",
                "warning",
                "medium",
                True,
                f"Customer satisfaction is {f.satisfaction_score:g}/10 "
                f"(threshold {MIN_SATISFACTION:g})",
                {"satisfaction_score": f.satisfaction_score, "threshold": MIN_SATISFACTION},
            )
        )
    base = f.latest_complete_month  # a full month against the forecast of a full month
    if (
        f.forecast_next_month is not None
        and base is not None
        and base > 0
        and f.forecast_next_month < base * (1 - FORECAST_DROP_PCT / 100)
    ):
        drop = round(100 * (base - f.forecast_next_month) / base, 2)
        out.append(
            _alert(
                "forecast_below_current_month",
                "info",
                "low",
                False,
                f"Next month's revenue is forecast {drop:g}% below the latest complete month's "
                f"({f.forecast_next_month:,.2f} vs {base:,.2f})",
                {
                    "forecast_next_month": f.forecast_next_month,
                    "latest_complete_month": base,
                    "drop_pct": drop,
                },
            )
        )
    return out
