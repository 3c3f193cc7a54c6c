"""Holt's linear trend (double exponential smoothing) on a monthly series, and its backtest.

Hand-written: the recursion is a dozen lines, and statsmodels (with scipy and pandas) would be a
heavy dependency for it. Initial level y0 and trend y1 - y0, so a series with an exact linear
trend is forecast exactly whatever alpha and beta are. Alpha and beta are chosen on a grid
(0.05 .. 0.95 by 0.05) by the least sum of squared one-step-ahead errors; ties keep the smaller
values, so the choice is deterministic.
"""

from __future__ import annotations

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
    forecast: float
    """The next period's value: level + trend after the last observation."""
    sse: float


def holt_run(series: Sequence[float], alpha: float, beta: float) -> tuple[float, float]:
    """(forecast of the next value, sum of squared one-step-ahead errors) for given parameters."""
    level, trend = series[0], series[1] - series[0]
    sse = 0.0
    for y in series[1:]:
        predicted = level + trend
        sse += (y - predicted) ** 2
        previous, level = level, alpha * y + (1 - alpha) * predicted
        trend = beta * (level - previous) + (1 - beta) * trend
    return level + trend, sse


def holt_fit(series: Sequence[float]) -> HoltFit | None:
    """The grid's best fit, or None with fewer than MIN_POINTS values."""
    if len(series) < MIN_POINTS:
        return None
    best: HoltFit | None = None
    for alpha in GRID:
        for beta in GRID:
            forecast, sse = holt_run(series, alpha, beta)
            if best is None or sse < best.sse - 1e-9 * max(1.0, best.sse):
                best = HoltFit(alpha, beta, forecast, sse)
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
        assert fit is not None
        errors.append((series[k], fit.forecast))
    if not errors:
        return Backtest(None, None, 0)
    mae = sum(abs(a - f) for a, f in errors) / len(errors)
    relative = [abs(a - f) / abs(a) for a, f in errors if a != 0]
    mape = 100 * sum(relative) / len(relative) if relative else None
    return Backtest(mae, mape, len(errors))
