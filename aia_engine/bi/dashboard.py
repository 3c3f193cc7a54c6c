"""The business-intelligence dashboard of one client: the guide's shape plus `details`.

`compute_dashboard` reads the client's knowledge graph (business.py) and the engine's records
(operations.py), then derives the forecast (forecast.py), trends and alerts (rules.py). Every
figure without data is None (null), never 0 or a made-up number.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from aia_engine.agents.builtin.sentiment import NEGATIVE, analyzer
from aia_engine.bi import business, rules
from aia_engine.bi.forecast import backtest, holt_fit
from aia_engine.bi.operations import operations
from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidDashboardPeriod

_MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
MAX_MONTHS = 36
"""The monthly series, the forecast and the trend read at most the last 36 months up to the
reference month; older purchases are outside the window (still a customer's first purchase)."""
STATEMENT_TIMEOUT_S = 60
"""Each statement of a computation is cancelled past this (below the cache's 120 s lock)."""


def parse_month(month: str, *, today: date) -> date:
    """The first day of `month` (YYYY-MM); refuses a malformed or future month."""
    match = _MONTH_RE.match(month)
    if not match or int(match.group(1)) < 1:
        raise InvalidDashboardPeriod(
            f"month {month[:20]!r} is not a month written YYYY-MM (e.g. 2025-06)",
            field="month",
            issue="not a YYYY-MM month",
        )
    first = date(int(match.group(1)), int(match.group(2)), 1)
    if first > today:
        raise InvalidDashboardPeriod(
            f"month {month} is after the current month ({today:%Y-%m}); it has no data yet",
            field="month",
            issue="in the future",
        )
    return first


def month_key(day: date) -> str:
    return f"{day:%Y-%m}"


def _months(first: date, last: date) -> list[date]:
    """First days of the months from `first`'s to `last`'s, oldest first."""
    out, cursor = [], first.replace(day=1)
    while cursor <= last:
        out.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return out


def requested_reference(month: str, *, today: date) -> date:
    """The reference date of a requested month: its last day, or today in the current month."""
    first = parse_month(month, today=today)
    return min(_last_day(first), today)


def _last_day(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _months_before(first: date, n: int) -> date:
    """The first day of the month `n` months before `first`'s."""
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def dashboard_id(client_id: str, month: str) -> str:
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:12]
    return f"bi_dashboard_{digest}_{month.replace('-', '')}"


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _revenue(daily: business.Daily) -> dict[str, Any]:
    """The monthly series (at most MAX_MONTHS, up to R), the month to date, the previous month
    in full and over the same days (like for like)."""
    reference = daily.reference
    m1 = reference.replace(day=1)
    partial = reference != _last_day(reference)
    empty = {"series": [], "months": [], "purchases_this_month": 0, "partial": partial}
    if daily.first_day is None or daily.first_day > reference:
        return {**empty, "previous_to_date": None}
    window_start = _months_before(m1, MAX_MONTHS - 1)
    months = _months(max(daily.first_day.replace(day=1), window_start), reference)
    parts: dict[date, list[float]] = {m: [] for m in months}
    for d, v in daily.revenue.items():
        if window_start <= d <= reference:
            parts[d.replace(day=1)].append(v)
    series = [round(math.fsum(parts[m]), 2) for m in months]
    previous_to_date = None
    if len(months) >= 2:
        p1 = months[-2]
        # like for like: the previous month's days 1..R's day (clamped to its length); the whole
        # previous month when the reference month is complete
        cutoff = p1.replace(day=min(reference.day, calendar.monthrange(p1.year, p1.month)[1]))
        cutoff = cutoff if partial else _last_day(p1)
        previous_to_date = round(
            math.fsum(v for d, v in daily.revenue.items() if p1 <= d <= cutoff), 2
        )
    purchases = sum(n for d, n in daily.purchases.items() if m1 <= d <= reference)
    return {
        "series": series,
        "months": months,
        "purchases_this_month": purchases,
        "partial": partial,
        "previous_to_date": previous_to_date,
    }


def _satisfaction(texts: list[str]) -> tuple[float | None, float | None]:
    if not texts:
        return None, None
    vader = analyzer()
    scores = [float(vader.polarity_scores(t)["compound"]) for t in texts]
    mean = sum(5 * (c + 1) for c in scores) / len(scores)
    negative = sum(1 for c in scores if c <= NEGATIVE)
    return round(mean, 1), _pct(negative, len(scores))


def compute_dashboard(
    sessions: Sessions, client_id: str, *, month: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The dashboard of `client_id` for `month` (YYYY-MM; default: the latest purchase's)."""
    now = now or utcnow()
    today = now.astimezone(UTC).date()
    requested = requested_reference(month, today=today) if month is not None else None
    with sessions() as session:
        # The scan cannot outlive the cache's recompute lock (cache.LOCK_S): a statement past
        # this is cancelled, and the computation fails instead of running twice.
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_S * 1000}"))
        daily, counts = business.scan(
            session, client_id, requested=requested, today=today, months=MAX_MONTHS
        )
        reference = daily.reference
        feedback = business.feedback(session, client_id, reference=reference)
        ops = operations(session, client_id, now=now)
    if month is not None:
        basis = "requested"
    elif daily.latest_day is not None and daily.latest_day <= today:
        basis = "latest_data"
    else:
        basis = "current"
    revenue = _revenue(daily)
    has_sales = bool(revenue["series"])
    partial: bool = revenue["partial"]

    series: list[float] = revenue["series"]
    current = series[-1] if has_sales else None
    previous = series[-2] if len(series) >= 2 else None
    previous_to_date: float | None = revenue["previous_to_date"]
    growth = (
        round(100 * (current - previous_to_date) / abs(previous_to_date), 2)
        if current is not None and previous_to_date
        else None
    )
    # The forecast and the trend read complete months only: a month to date is not a month.
    complete = series[:-1] if partial else series
    latest_complete = complete[-1] if complete else None
    horizon = 2 if partial else 1
    fit = holt_fit(complete)
    test = backtest(complete) if fit else None
    ahead = fit.ahead(horizon) if fit else None
    forecast = round(ahead, 2) if ahead is not None and math.isfinite(ahead) else None

    customers = _customers(counts, has_sales)
    satisfaction, negative_share = _satisfaction(feedback.texts)
    churn_week = _pct(counts["churned_week"], counts["base_week"]) if has_sales else None
    churn_previous = (
        _pct(counts["churned_previous_week"], counts["base_previous_week"]) if has_sales else None
    )
    figures = rules.Figures(
        churn_week=churn_week,
        churn_previous_week=churn_previous,
        growth_rate=growth,
        current_month=current,
        previous_month_to_date=previous_to_date,
        latest_complete_month=latest_complete,
        forecast_next_month=forecast,
        task_completion_rate=ops["task_completion_rate"],
        system_uptime=ops["system_uptime"],
        satisfaction_score=satisfaction,
    )
    ref_month = month_key(reference)
    return {
        "dashboard_id": dashboard_id(client_id, ref_month),
        "generated_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "metrics": {
            "revenue": {
                "current_month": current,
                "previous_month": previous,
                "growth_rate": growth,
                "forecast_next_month": forecast,
            },
            "customers": {
                "total_active": customers["total_active"],
                "new_this_month": customers["new_this_month"],
                "churn_rate": customers["churn_rate"],
                "satisfaction_score": satisfaction,
            },
            "operations": {
                k: ops[k]
                for k in (
                    "task_completion_rate",
                    "average_response_time",
                    "system_uptime",
                    "agent_efficiency",
                )
            },
        },
        "trends": {
            "revenue_trend": rules.revenue_trend(complete),
            "customer_growth": rules.customer_growth(
                customers["new_this_month"], customers["churned"], customers["active_at_start"]
            ),
            "operational_efficiency": rules.operational_efficiency(
                ops["completion_rate_week"], ops["completion_rate_previous_week"]
            ),
        },
        "alerts": rules.alerts(figures),
        "details": {
            "period": {
                "month": ref_month,
                "reference_date": reference.isoformat(),
                "basis": basis,
                "activity_window_days": business.ACTIVITY_WINDOW_DAYS,
                "partial": partial,
                "max_months": MAX_MONTHS,
            },
            "revenue": {
                "monthly": [
                    {"month": month_key(m), "revenue": v}
                    for m, v in zip(revenue["months"], series, strict=True)
                ],
                "purchases_this_month": revenue["purchases_this_month"],
                "previous_month_to_date": previous_to_date,
                "latest_complete_month": latest_complete,
                "top_customer_share": (
                    _pct(counts["top_customer_month"] or 0.0, current) if current else None
                ),
            },
            "forecast": {
                "method": "holt_linear",
                "fitted_months": len(complete),
                "horizon_months": horizon,
                "alpha": fit.alpha if fit else None,
                "beta": fit.beta if fit else None,
                "backtest": {
                    "mae": round(test.mae, 2) if test and test.mae is not None else None,
                    "mape": round(test.mape, 2) if test and test.mape is not None else None,
                    "points": test.points if test else 0,
                },
            },
            "customers": {
                "active_at_start": customers["active_at_start"],
                "churned": customers["churned"],
                "at_risk": customers["at_risk"],
                "revenue_at_risk": customers["revenue_at_risk"],
                "feedback_count": len(feedback.texts),
                "negative_feedback_share": negative_share,
                "churn_rate_week": churn_week,
                "churn_rate_previous_week": churn_previous,
            },
            "operations": {
                **ops["details"],
                "completion_rate_week": ops["completion_rate_week"],
                "completion_rate_previous_week": ops["completion_rate_previous_week"],
            },
            "ignored": {"purchases": daily.ignored, "feedback": feedback.ignored},
        },
    }


def _customers(counts: dict[str, Any], has_sales: bool) -> dict[str, Any]:
    if not has_sales:
        return dict.fromkeys(
            (
                "total_active",
                "new_this_month",
                "churn_rate",
                "active_at_start",
                "churned",
                "at_risk",
                "revenue_at_risk",
            )
        )
    return {
        "total_active": counts["total_active"],
        "new_this_month": counts["new_this_month"],
        "churn_rate": _pct(counts["churned"], counts["active_at_start"]),
        "active_at_start": counts["active_at_start"],
        "churned": counts["churned"],
        "at_risk": counts["at_risk"],
        "revenue_at_risk": round(counts["revenue_at_risk"] or 0.0, 2),
    }
