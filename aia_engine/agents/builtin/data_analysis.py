"""`data_analysis_agent`: descriptive statistics, group-bys and trends over records.

* Numeric fields (int/float, not bool) get count, mean, median, stdev, min, max and quartiles.
* `group_by` (param, or the first text field with 2-20 distinct values) gives per-group counts
  and means of every numeric field.
* `time_field` (param, or the first of date/period/created_at/timestamp/month) orders the
  records; each numeric field is summed per time value and gets first, last, growth % and the
  least-squares slope per step, with a direction (increasing / decreasing / stable: |growth| < 1 %).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.builtin.inputs import find_records
from aia_engine.agents.registry import agent

TIME_FIELDS = ("date", "period", "created_at", "timestamp", "month", "day", "week")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numeric_fields(records: list[dict[str, Any]]) -> list[str]:
    fields: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if _is_number(value):
                fields.setdefault(key)
    return list(fields)


def describe(values: list[float]) -> dict[str, float | int]:
    out: dict[str, float | int] = {
        "count": len(values),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }
    if len(values) > 1:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        out["p25"], out["p75"] = round(q1, 4), round(q3, 4)
    return out


def trend(series: list[float]) -> dict[str, Any]:
    first, last = series[0], series[-1]
    growth = round(100.0 * (last - first) / abs(first), 2) if first else None
    slope = (
        statistics.linear_regression(range(len(series)), series).slope if len(series) > 1 else 0.0
    )
    if growth is None:
        direction = "increasing" if slope > 0 else "decreasing" if slope < 0 else "stable"
    else:
        direction = "stable" if abs(growth) < 1 else "increasing" if growth > 0 else "decreasing"
    return {
        "points": len(series),
        "first": first,
        "last": last,
        "growth_pct": growth,
        "slope_per_step": round(slope, 4),
        "direction": direction,
    }


@agent(
    "data_analysis_agent",
    "Descriptive statistics of numeric fields, group-bys and time trends over records "
    "(requirements.records, a sample data_source, or an upstream stage's records).",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    records, source = find_records(ctx)
    numeric = numeric_fields(records)
    stats = {f: describe([float(r[f]) for r in records if _is_number(r.get(f))]) for f in numeric}
    ctx.progress(50.0, {"records": len(records), "numeric_fields": numeric})
    result: dict[str, Any] = {
        "source": source,
        "record_count": len(records),
        "numeric_fields": numeric,
        "statistics": stats,
    }
    group_field = ctx.param("group_by") or _guess_group_field(records)
    if group_field:
        result["group_by"] = _group_by(records, str(group_field), numeric)
    time_field = ctx.param("time_field") or next(
        (f for f in TIME_FIELDS if records and f in records[0]), None
    )
    if time_field and numeric:
        result["trends"] = _trends(records, str(time_field), numeric)
        if group_field:
            result["group_trends"] = _group_trends(
                records, str(group_field), str(time_field), numeric[0]
            )
    return result


def _guess_group_field(records: list[dict[str, Any]]) -> str | None:
    if not records:
        return None
    for key, value in records[0].items():
        if isinstance(value, str) and key not in TIME_FIELDS:
            distinct = {str(r.get(key)) for r in records}
            if 2 <= len(distinct) <= 20 and len(distinct) < len(records):
                return key
    return None


def _group_by(records: list[dict[str, Any]], field: str, numeric: list[str]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[str(record.get(field))].append(record)
    out: dict[str, Any] = {"field": field, "groups": {}}
    for name, rows in sorted(groups.items()):
        means = {
            f: round(statistics.fmean(vals), 4)
            for f in numeric
            if (vals := [float(r[f]) for r in rows if _is_number(r.get(f))])
        }
        out["groups"][name] = {
            "count": len(rows),
            "share_pct": round(100.0 * len(rows) / len(records), 2),
            "means": means,
        }
    return out


def _series(records: list[dict[str, Any]], time_field: str, metric: str) -> list[float]:
    totals: dict[str, float] = defaultdict(float)
    for record in records:
        if _is_number(record.get(metric)) and record.get(time_field) is not None:
            totals[str(record[time_field])] += float(record[metric])
    return [totals[k] for k in sorted(totals)]


def _trends(records: list[dict[str, Any]], time_field: str, numeric: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"time_field": time_field, "metrics": {}}
    for metric in numeric:
        series = _series(records, time_field, metric)
        if series:
            out["metrics"][metric] = trend(series)
    return out


def _group_trends(
    records: list[dict[str, Any]], group_field: str, time_field: str, metric: str
) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[str(record.get(group_field))].append(record)
    return {
        "metric": metric,
        "groups": {
            name: trend(s)
            for name, rows in sorted(groups.items())
            if (s := _series(rows, time_field, metric))
        },
    }
