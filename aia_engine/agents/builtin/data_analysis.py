"""`data_analysis_agent`: descriptive statistics, group-bys and trends over records.

* Numeric fields (int/float, not bool) get count, mean, median, stdev, min, max and quartiles
  (`statistics.quantiles(method="inclusive")`'s definition).
* `group_by` (param, or the first text field of the first record with 2-20 distinct values)
  gives per-group counts and means of every numeric field.
* `time_field` (param, or the first of date/period/created_at/timestamp/month/day/week in the
  first record) orders the records; each numeric field is summed per time value and gets
  first, last, growth % and the least-squares slope per step, with a direction (increasing /
  decreasing / stable: |growth| < 1 %).

The records are read once, in order, and never held: a stored dataset streams from
PostgreSQL. Each numeric column keeps its values in a compact `array('d')` (8 bytes a value)
for exact medians and quartiles; counts, sums, groups and time series are aggregated as the
records go by. A guessed group field is dropped as soon as it passes 20 distinct values.

Time series are bounded: at most 5,000 distinct time values (MAX_TIME_POINTS) are followed, the
first ones met; records at later new values still count in the statistics and groups but not in
the trends, and the result says so (`trends.time_points_cut`). Per-group series (for
`group_trends`, of the first numeric field only) are kept for every guessed group field over
the first 1,000 records, then only for the one leading then (`params.group_by`'s from the
start); if that one later passes 20 values, `group_trends` is left out.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from aia_engine.agents.base import AgentContext
from aia_engine.agents.builtin.inputs import find_rows
from aia_engine.agents.registry import agent
from aia_engine.errors import AgentError

TIME_FIELDS = ("date", "period", "created_at", "timestamp", "month", "day", "week")
MAX_GROUPS = 20
MAX_PARAM_GROUPS = 10_000
"""Distinct values a `group_by` param's field may have (each group keeps its sums)."""
PROGRESS_EVERY = 100_000
MAX_TIME_POINTS = 5_000
"""Distinct time values followed in trends (the first met)."""
CHOOSE_AFTER = 1_000
"""Records after which per-group series are kept for the leading group field only."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(values: Sequence[float]) -> dict[str, float | int]:
    """count, mean, median, stdev (sample), min, max, p25 and p75 of `values` (not empty)."""
    given = np.frombuffer(values) if isinstance(values, array) else np.asarray(values, float)
    data = np.sort(given)
    n = len(data)
    mean = math.fsum(values) / n
    half = n // 2
    median = float(data[half]) if n % 2 else (float(data[half - 1]) + float(data[half])) / 2
    with np.errstate(over="ignore"):  # values near the float limit: stdev inf, as in Python
        squares = (data - mean) ** 2
    out: dict[str, float | int] = {
        "count": n,
        "mean": round(mean, 4),
        "median": round(median, 4),
        "stdev": round(math.sqrt(math.fsum(squares) / (n - 1)), 4) if n > 1 else 0.0,
        "min": float(data[0]),
        "max": float(data[-1]),
    }
    if n > 1:
        # statistics.quantiles(data, n=4, method="inclusive"), on the sorted array.
        m = n - 1
        for i, key in ((1, "p25"), (3, "p75")):
            j, delta = divmod(i * m, 4)
            low, high = float(data[j]), float(data[j + 1]) if delta else 0.0
            out[key] = round((low * (4 - delta) + high * delta) / 4, 4)
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


class _Group:
    __slots__ = ("count", "counts", "series", "sums")

    def __init__(self) -> None:
        self.count = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.series: dict[str, float] = defaultdict(float)
        """The first numeric field's sum per time value."""


class Analysis:
    """Feed every record to `add`, in order; `result()` gives the agent's output."""

    def __init__(self, group_by: str | None, time_field: str | None) -> None:
        self.group_param = group_by
        self.time_field = time_field
        self.records = 0
        self.values: dict[str, array[float]] = {}
        self.totals: dict[str, dict[str, float]] = {}
        self.times: set[str] = set()
        self.times_cut = False
        self.candidates: dict[str, dict[str, _Group]] = {}
        if group_by:
            self.candidates[group_by] = {}
        self.series_for: set[str] | None = {group_by} if group_by else None
        """The group fields whose groups keep series (None: every candidate, for now)."""

    def _start(self, record: dict[str, Any]) -> None:
        if self.time_field is None:
            self.time_field = next((f for f in TIME_FIELDS if f in record), None)
        if not self.group_param:
            for key, value in record.items():
                if isinstance(value, str) and key not in TIME_FIELDS:
                    self.candidates[key] = {}

    def add(self, record: dict[str, Any]) -> None:
        if not self.records:
            self._start(record)
        self.records += 1
        numbers = [(k, float(v)) for k, v in record.items() if _is_number(v)]
        for key, value in numbers:
            column = self.values.get(key)
            if column is None:
                column = self.values[key] = array("d")
            column.append(value)
        when = self._time_of(record)
        if when is not None:
            for key, value in numbers:
                totals = self.totals.get(key)
                if totals is None:
                    totals = self.totals[key] = defaultdict(float)
                totals[when] += value
        self._add_to_groups(record, numbers, when)
        if self.series_for is None and self.records == CHOOSE_AFTER:
            self._keep_series_of_the_leader()

    def _time_of(self, record: dict[str, Any]) -> str | None:
        """The record's time value as text; None when it has none or when it is a new one past
        MAX_TIME_POINTS."""
        when = record.get(self.time_field) if self.time_field else None
        if when is None:
            return None
        when = str(when)
        if when not in self.times:
            if len(self.times) >= MAX_TIME_POINTS:
                self.times_cut = True
                return None
            self.times.add(when)
        return when

    def _keep_series_of_the_leader(self) -> None:
        leading = self._group_field()
        self.series_for = {leading} if leading else set()
        for field, groups in self.candidates.items():
            if field not in self.series_for:
                for group in groups.values():
                    group.series.clear()

    def _add_to_groups(
        self, record: dict[str, Any], numbers: list[tuple[str, float]], when: str | None
    ) -> None:
        metric = next(iter(self.values), None)  # the first numeric field met
        for field in list(self.candidates):
            groups = self.candidates[field]
            kept = self.series_for is None or field in self.series_for
            at = when if kept else None  # where this field's groups add to their series
            name = str(record.get(field))
            group = groups.get(name)
            if group is None:
                if field == self.group_param:
                    if len(groups) >= MAX_PARAM_GROUPS:
                        raise AgentError(
                            f"params.group_by {field!r} has more than {MAX_PARAM_GROUPS} "
                            "distinct values; group by a field with fewer",
                            field="params.group_by",
                        )
                elif len(groups) >= MAX_GROUPS:
                    del self.candidates[field]  # too many distinct values to be a grouping
                    continue
                group = groups[name] = _Group()
            group.count += 1
            for key, value in numbers:
                group.sums[key] += value
                group.counts[key] += 1
                if at is not None and key == metric:
                    group.series[at] += value

    def _group_field(self) -> str | None:
        if self.group_param:
            return self.group_param
        return next(
            (f for f, g in self.candidates.items() if len(g) >= 2 and len(g) < self.records),
            None,
        )

    def result(self, source: str) -> dict[str, Any]:
        numeric = list(self.values)
        result: dict[str, Any] = {
            "source": source,
            "record_count": self.records,
            "numeric_fields": numeric,
            "statistics": {f: describe(v) for f, v in self.values.items()},
        }
        group_field = self._group_field()
        if group_field:
            result["group_by"] = self._group_by(group_field, numeric)
        if self.time_field and numeric:
            result["trends"] = {
                "time_field": self.time_field,
                "metrics": {
                    m: trend(_ordered(self.totals[m])) for m in numeric if self.totals.get(m)
                },
            }
            if self.times_cut:
                result["trends"]["time_points_cut"] = True
                result["trends"]["time_points_limit"] = MAX_TIME_POINTS
            kept = self.series_for is None or group_field in self.series_for
            if group_field and kept:
                result["group_trends"] = {
                    "metric": numeric[0],
                    "groups": {
                        name: trend(_ordered(g.series))
                        for name, g in sorted(self.candidates[group_field].items())
                        if g.series
                    },
                }
        return result

    def _group_by(self, field: str, numeric: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"field": field, "groups": {}}
        for name, g in sorted(self.candidates[field].items()):
            out["groups"][name] = {
                "count": g.count,
                "share_pct": round(100.0 * g.count / self.records, 2),
                "means": {f: round(g.sums[f] / g.counts[f], 4) for f in numeric if g.counts.get(f)},
            }
        return out


def _ordered(totals: dict[str, float]) -> list[float]:
    return [totals[k] for k in sorted(totals)]


def analyse(
    records: Iterable[dict[str, Any]],
    source: str,
    *,
    group_by: str | None = None,
    time_field: str | None = None,
    total: int | None = None,
    ctx: AgentContext | None = None,
) -> dict[str, Any]:
    """The analysis of `records`, read once; progress every 100,000 records when `total` is
    known (a stored dataset)."""
    analysis = Analysis(group_by, time_field)
    for record in records:
        analysis.add(record)
        if ctx is not None and total and analysis.records % PROGRESS_EVERY == 0:
            ctx.progress(90.0 * analysis.records / total, {"records_read": analysis.records})
    return analysis.result(source)


@agent(
    "data_analysis_agent",
    "Descriptive statistics of numeric fields, group-bys and time trends over records "
    "(requirements.records, a dataset named by data_source or dataset_id, or an upstream "
    "stage's records); streams datasets of any size.",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    rows, source = find_rows(ctx)
    group_by, time_field = ctx.param("group_by"), ctx.param("time_field")
    result = analyse(
        rows,
        source,
        group_by=str(group_by) if group_by else None,
        time_field=str(time_field) if time_field else None,
        total=None if isinstance(rows, list) else rows.rows,
        ctx=ctx,
    )
    ctx.progress(95.0, {"records": result["record_count"]})
    return result
