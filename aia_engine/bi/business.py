"""The business figures' SQL, over one client's kg_nodes and kg_relationships.

PURCHASED relationships (customer -> product) carry `amount` (a JSON number, or a string holding
a decimal number) and `date` (an ISO date, or a datetime whose first ten characters are its
date). A purchase whose amount or date does not parse is left out and counted as ignored. Dates
are checked without raising (PostgreSQL 15 has no pg_input_is_valid): the pattern fixes the
shape, and a day past its month's end (2024-02-30, 2023-02-29) is refused before make_date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

ACTIVITY_WINDOW_DAYS = 90
AT_RISK_AFTER_DAYS = 60
"""An active customer whose last purchase is more than 60 days old (of the 90-day window)."""
MAX_FEEDBACK = 20_000
"""Feedback texts scored per dashboard at most (the most recently written ones)."""

_DATE_RE = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ].*)?$"
_AMOUNT_RE = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


def _day(expr: str) -> str:
    """SQL: the date `expr` (text) holds, or NULL. The day is checked against its month's
    length (February's by the Gregorian leap rule) before make_date, which would raise."""
    y, m, d = (f"substr({expr}, {a}, {n})::int" for a, n in ((1, 4), (6, 2), (9, 2)))
    leap = f"(({y}) % 4 = 0 AND (({y}) % 100 <> 0 OR ({y}) % 400 = 0))"
    length = (
        f"CASE WHEN {m} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        f"WHEN {m} IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
    )
    return (  # nested CASEs: the casts run only on text the pattern accepted
        f"CASE WHEN {expr} ~ '{_DATE_RE}' THEN "
        f"CASE WHEN {d} <= {length} THEN make_date({y}, {m}, {d}) END END"
    )


_AMOUNT = (
    "CASE jsonb_typeof(r.properties->'amount') "
    "WHEN 'number' THEN (r.properties->'amount')::text::numeric "
    f"WHEN 'string' THEN CASE WHEN (r.properties->>'amount') ~ '{_AMOUNT_RE}' "
    "THEN (r.properties->>'amount')::numeric END END"
)
# OFFSET 0 keeps the lateral subquery from being flattened: each row's amount and date are
# parsed once, not once per place the outer queries use them (5x faster on 1M purchases).
_PURCHASES = f"""
    SELECT r.source_id AS customer, v.amount, v.day
      FROM kg_relationships r
     CROSS JOIN LATERAL (
           SELECT {_AMOUNT} AS amount, {_day("(r.properties->>'date')")} AS day OFFSET 0
     ) v
     WHERE r.client_id = :c AND r.type = 'PURCHASED'
"""

# One scan: the purchases are parsed once into a materialized CTE, summed per day, and the
# reference date R (the requested one, else the latest purchase's, at most today) is derived
# from those sums inside the statement, so the per-customer windows need no second scan.
_R, _M1 = "(SELECT r FROM b)", "(SELECT m1 FROM b)"
_W = ACTIVITY_WINDOW_DAYS
_SCAN = text(
    f"""
    WITH p AS MATERIALIZED ({_PURCHASES}),
    daily AS (
      SELECT CASE WHEN amount IS NOT NULL THEN day END AS day,
             sum(amount) FILTER (WHERE amount IS NOT NULL AND day IS NOT NULL) AS revenue,
             count(*) AS n
        FROM p
       GROUP BY 1
    ),
    b AS (
      SELECT r, date_trunc('month', r)::date AS m1
        FROM (SELECT coalesce(CAST(:requested AS date), least(max(day), CAST(:today AS date)),
                              CAST(:today AS date)) AS r
                FROM daily) x
    ),
    per AS (
      SELECT customer, min(day) AS first_day, max(day) AS last_day,
             bool_or(day >= {_M1} - {_W} AND day < {_M1}) AS at_start,
             bool_or(day > {_R} - 7 - {_W} AND day <= {_R} - 7) AS a7,
             bool_or(day > {_R} - 14 - {_W} AND day <= {_R} - 14) AS a14,
             sum(amount) FILTER (WHERE day > {_R} - {_W}) AS window_revenue,
             sum(amount) FILTER (WHERE day >= {_M1}) AS month_revenue
        FROM p
       WHERE amount IS NOT NULL AND day IS NOT NULL AND day <= {_R}
       GROUP BY customer
    ),
    counts AS (
      SELECT count(*) FILTER (WHERE last_day > {_R} - {_W}) AS total_active,
             count(*) FILTER (WHERE first_day >= {_M1}) AS new_this_month,
             count(*) FILTER (WHERE at_start) AS active_at_start,
             count(*) FILTER (WHERE at_start AND last_day <= {_R} - {_W}) AS churned,
             count(*) FILTER (WHERE last_day > {_R} - {_W}
                                AND last_day <= {_R} - {AT_RISK_AFTER_DAYS}) AS at_risk,
             sum(window_revenue) FILTER (WHERE last_day > {_R} - {_W}
                                AND last_day <= {_R} - {AT_RISK_AFTER_DAYS}) AS revenue_at_risk,
             count(*) FILTER (WHERE a7) AS base_week,
             count(*) FILTER (WHERE a7 AND last_day <= {_R} - {_W}) AS churned_week,
             count(*) FILTER (WHERE a14) AS base_previous_week,
             count(*) FILTER (WHERE a14 AND NOT a7) AS churned_previous_week,
             max(month_revenue) AS top_customer_month
        FROM per
    )
    SELECT (SELECT r FROM b) AS reference,
           (SELECT coalesce(json_agg(json_build_array(day, revenue, n)), '[]') FROM daily) AS daily,
           counts.*
      FROM counts
    """
)

_FEEDBACK = text(
    f"""
    SELECT n.properties->>'text' AS text
      FROM kg_nodes n
     WHERE n.client_id = :c AND n.type = 'feedback'
       AND jsonb_typeof(n.properties->'text') = 'string' AND n.properties->>'text' <> ''
       AND coalesce({_day("(n.properties->>'date')")} BETWEEN :r - {ACTIVITY_WINDOW_DAYS - 1} AND :r,
                    true)
     ORDER BY n.updated_at DESC, n.node_id
     LIMIT {MAX_FEEDBACK}
    """
)


@dataclass(frozen=True)
class Daily:
    revenue: dict[date, float]
    """Revenue per day with at least one valid purchase."""
    purchases: dict[date, int]
    ignored: int


def scan(
    session: Session, client_id: str, *, requested: date | None, today: date
) -> tuple[date, Daily, dict[str, Any]]:
    """(R, revenue per day, counts over customers as of R) in one scan of the purchases.
    R is `requested`, else the latest valid purchase date if not after `today`, else today."""
    row = (
        session.execute(_SCAN, {"c": client_id, "requested": requested, "today": today})
        .mappings()
        .one()
    )
    revenue: dict[date, float] = {}
    purchases: dict[date, int] = {}
    ignored = 0
    for day, total, n in row["daily"]:
        if day is None:
            ignored += int(n)
        else:
            revenue[date.fromisoformat(day)] = float(Decimal(str(total)))
            purchases[date.fromisoformat(day)] = int(n)
    counts = {
        k: (float(v) if isinstance(v, Decimal) else v)
        for k, v in row.items()
        if k not in ("reference", "daily")
    }
    return row["reference"], Daily(revenue, purchases, ignored), counts


def feedback_texts(session: Session, client_id: str, *, reference: date) -> list[str]:
    """Feedback texts dated in the 90 days ending at `reference`, and every undated one."""
    return list(session.scalars(_FEEDBACK, {"c": client_id, "r": reference}))
