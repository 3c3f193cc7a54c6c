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
    # Each prefix below is an exact line, so each forecast is known by hand whatever alpha and
    # beta: [10, 20, 30] -> 40 (actual 40, error 0); [10, 20, 30, 40] -> 50 (actual 0, error 50)
    test = backtest([10.0, 20.0, 30.0, 40.0, 0.0])
    assert (test.points, test.mae) == (2, pytest.approx(25.0))
    assert test.mape == pytest.approx(0.0)  # the 0 month has no percentage; the 40 one is exact
    # [10, 20, 30] -> 40 against an actual 50: error 10, 20 %
    test = backtest([10.0, 20.0, 30.0, 50.0])
    assert (test.points, test.mae, test.mape) == (1, pytest.approx(10.0), pytest.approx(20.0))
    assert backtest([1.0, 2.0, 3.0]).points == 0
    assert backtest([float(i) for i in range(30)]).points == 12  # the last 12 months only


def test_two_steps_ahead_continue_the_trend() -> None:
    fit = holt_fit([1000.0, 1100.0, 1200.0, 1300.0])
    assert fit is not None
    assert fit.ahead(2) == pytest.approx(1500.0, abs=1e-9)


@pytest.mark.parametrize(
    "series",
    [
        [1e160, 3e160, 1e160, 4e160],  # squared errors past the float range
        [1e308, -1e308, 1e308],  # the trend itself overflows
        [float("inf"), 1.0, 2.0],
        [float("nan"), 1.0, 2.0],
    ],
)
def test_overflow_gives_no_forecast_rather_than_an_error(series: list[float]) -> None:
    assert holt_fit(series) is None
    assert backtest([*series, 1.0]).points == 0
