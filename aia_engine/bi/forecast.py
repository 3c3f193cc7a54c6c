"""Holt's linear trend (double exponential smoothing) on a monthly series, and its backtest.

Hand-written: the recursion is a dozen lines, and statsmodels (with scipy and pandas) would be a
heavy dependency for it. Initial level y0 and trend y1 - y0, so a series with an exact linear
trend is forecast exactly whatever alpha and beta are. Alpha and beta are chosen on a grid
(0.05 .. 0.95 by 0.05) by the least sum of squared one-step-ahead errors; ties keep the smaller
values, so the choice is deterministic. Arithmetic that overflows (or a value that is not finite)
gives no fit: the dashboard shows null rather than failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
MIN_POINTS = 3
"""Fewer months than this: no forecast (two points fix a line, nothing is left to fit)."""
BACKTEST_POINTS = 12
"""The backtest forecasts at most the last 12 months (each refits alpha and beta)."""


@dataclass(frozen=True)
class HoltFit:
    alpha: float
    beta: float
    level: float
    trend: float
    """Level and trend after the last observation."""
    sse: float

    @property
    def forecast(self) -> float:
        """The next period's value: level + trend."""
        return self.ahead(1)

    def ahead(self, steps: int) -> float:
        """The value `steps` periods after the last observation: level + steps * trend."""
        return self.level + steps * self.trend


def holt_state(series: Sequence[float], alpha: float, beta: float) -> tuple[float, float, float]:
    """(level, trend, sum of squared one-step-ahead errors) after the series."""
    level, trend = series[0], series[1] - series[0]
    sse = 0.0
    for y in series[1:]:
        predicted = level + trend
        sse += (y - predicted) * (y - predicted)  # inf on overflow, never OverflowError
        previous, level = level, alpha * y + (1 - alpha) * predicted
        trend = beta * (level - previous) + (1 - beta) * trend
    return level, trend, sse


def holt_run(series: Sequence[float], alpha: float, beta: float) -> tuple[float, float]:
    """(forecast of the next value, sum of squared one-step-ahead errors) for given parameters."""
    level, trend, sse = holt_state(series, alpha, beta)
    return level + trend, sse


def holt_fit(series: Sequence[float]) -> HoltFit | None:
    """The grid's best fit; None with fewer than MIN_POINTS values, or when a value, the fit's
    error or its forecast is not a finite number (overflow)."""
    if len(series) < MIN_POINTS or not all(math.isfinite(y) for y in series):
        return None
    best: HoltFit | None = None
    for alpha in GRID:
        for beta in GRID:
            level, trend, sse = holt_state(series, alpha, beta)
            if not math.isfinite(sse):
                continue
            if best is None or sse < best.sse - 1e-9 * max(1.0, best.sse):
                best = HoltFit(alpha, beta, level, trend, sse)
    if best is None or not (math.isfinite(best.level) and math.isfinite(best.trend)):
        return None
    return best


@dataclass(frozen=True)
class Backtest:
    mae: float | None
    mape: float | None
    """Percent; over the points whose actual value is not 0 (None when every one is 0)."""
    points: int


def backtest(series: Sequence[float], *, last: int = BACKTEST_POINTS) -> Backtest:
    """Rolling one-step-ahead: for each of the last `last` months that has at least MIN_POINTS
    months before it, fit on the months before and forecast it."""
    errors: list[tuple[float, float]] = []
    for k in range(max(MIN_POINTS, len(series) - last), len(series)):
        fit = holt_fit(series[:k])
        if fit is None or not math.isfinite(fit.forecast):
            return Backtest(None, None, 0)  # overflow: no backtest rather than a wrong one
        errors.append((series[k], fit.forecast))
    if not errors:
        return Backtest(None, None, 0)
    mae = sum(abs(a - f) for a, f in errors) / len(errors)
    relative = [abs(a - f) / abs(a) for a, f in errors if a != 0]
    mape = 100 * sum(relative) / len(relative) if relative else None
    if not math.isfinite(mae) or (mape is not None and not math.isfinite(mape)):
        return Backtest(None, None, 0)
    return Backtest(mae, mape, len(errors))
