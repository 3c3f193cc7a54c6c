"""Holt's linear trend: exact on linear series, flat on constant ones, and its backtest."""

from __future__ import annotations

import pytest

from aia_engine.bi.forecast import GRID, backtest, holt_fit, holt_run


@pytest.mark.parametrize(
    "series, expected",
    [
        ([1000.0, 1100.0, 1200.0, 1300.0], 1400.0),
        ([50.0, 40.0, 30.0], 20.0),
        ([7.5] * 12, 7.5),
    ],
)
def test_linear_and_constant_series_are_forecast_exactly(
    series: list[float], expected: float
) -> None:
    fit = holt_fit(series)
    assert fit is not None
    assert fit.forecast == pytest.approx(expected, abs=1e-9)
    assert fit.sse == pytest.approx(0.0, abs=1e-9)


def test_fewer_than_three_months_have_no_forecast() -> None:
    assert holt_fit([]) is None
    assert holt_fit([1.0, 2.0]) is None


def test_the_recursion_by_hand() -> None:
    # y = 10, 12, 16; alpha = beta = 0.5; level 10, trend 2
    # t=1: predicted 12, error 0; level 12, trend 0.5*(12-10) + 0.5*2 = 2
    # t=2: predicted 14, error 2; level 0.5*16 + 0.5*14 = 15, trend 0.5*(15-12) + 0.5*2 = 2.5
    forecast, sse = holt_run([10.0, 12.0, 16.0], 0.5, 0.5)
    assert (forecast, sse) == (17.5, 4.0)


def test_the_grid_search_picks_the_least_squared_error() -> None:
    series = [10.0, 14.0, 11.0, 19.0, 15.0, 24.0, 20.0]
    fit = holt_fit(series)
    assert fit is not None
    best = min(holt_run(series, a, b)[1] for a in GRID for b in GRID)
    assert fit.sse == pytest.approx(best)
    assert fit.alpha in GRID and fit.beta in GRID


def test_backtest_is_rolling_one_step_ahead() -> None:
    linear = [100.0 + 10 * i for i in range(8)]
    exact = backtest(linear)
    assert (exact.mae, exact.mape, exact.points) == (pytest.approx(0.0), pytest.approx(0.0), 5)
    series = [10.0, 12.0, 16.0, 15.0, 0.0]
    test = backtest(series)
    f3 = holt_fit(series[:3])
    f4 = holt_fit(series[:4])
    assert f3 is not None and f4 is not None
    errors = [abs(15.0 - f3.forecast), abs(0.0 - f4.forecast)]
    assert test.points == 2
    assert test.mae == pytest.approx(sum(errors) / 2)
    assert test.mape == pytest.approx(100 * errors[0] / 15.0)  # the 0 month has no percentage
    assert backtest([1.0, 2.0, 3.0]).points == 0
    assert len(range(max(3, 30 - 12), 30)) == backtest([float(i) for i in range(30)]).points
