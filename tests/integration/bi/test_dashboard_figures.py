"""The dashboard's figures on a seeded history whose answers are worked out by hand below
(independently of the implementation), on an empty graph, and per client."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from aia_engine.bi import business
from aia_engine.bi.dashboard import compute_dashboard
from aia_engine.errors import InvalidDashboardPeriod
from tests.integration.bi.seed import seed
from tests.integration.conftest import Services

NOW = datetime(2025, 7, 15, 12, 0, tzinfo=UTC)
# Reference date 2025-06-30 (month=2025-06). Windows, worked out by hand:
#   active:    purchase in (2025-04-01, 2025-06-30]    (90 days ending at the reference date)
#   at start:  purchase in [2025-03-03, 2025-06-01)    (90 days before the month's first day)
#   at risk:   active, last purchase in (2025-04-01, 2025-05-01]
#   this week's churn base: (2025-03-25, 2025-06-23]; last week's: (2025-03-18, 2025-06-16]
PURCHASES = [
    ("c1", "p1", {"amount": 1000, "date": "2025-01-10"}),
    ("c1", "p1", {"amount": 1100, "date": "2025-02-10T09:30:00Z"}),
    ("c1", "p2", {"amount": 900, "date": "2025-03-10"}),
    ("c4", "p2", {"amount": 100, "date": "2025-03-05"}),
    ("c5", "p1", {"amount": "200.00", "date": "2025-03-30"}),
    ("c1", "p1", {"amount": 700, "date": "2025-04-10"}),
    ("c2", "p2", {"amount": 600, "date": "2025-04-10"}),
    ("c1", "p1", {"amount": 1400, "date": "2025-05-10"}),
    ("c1", "p2", {"amount": 800, "date": "2025-06-10"}),
    ("c3", "p1", {"amount": 700, "date": "2025-06-20"}),
    # ignored: an amount that is not a number, a day past its month's end, no date
    ("c2", "p1", {"amount": "lots", "date": "2025-06-11"}),
    ("c2", "p1", {"amount": 5, "date": "2025-02-30"}),
    ("c2", "p1", {"amount": 5, "date": "2023-02-29"}),  # not a leap year
    ("c2", "p1", {"amount": 5, "date": "2025-6-1"}),
    ("c2", "p1", {"amount": 5}),
    # after the reference date: not in June's figures
    ("c2", "p1", {"amount": 999, "date": "2025-07-02"}),
]
MONTHLY = [1000.0, 1100.0, 1200.0, 1300.0, 1400.0, 1500.0]  # an exact linear trend: +100/month
FEEDBACK = {
    "f1": {"text": "Great service, I love it!", "date": "2025-06-01"},
    "f2": {"text": "Terrible delays and awful support.", "date": "2025-05-15"},
    "f3": {"text": "It is fine."},  # undated: always counted
    "f4": {"text": "Horrible, worst ever.", "date": "2024-01-01"},  # outside the window
}


def _client() -> str:
    return f"bi_{secrets.token_hex(4)}"


def _seed_history(services: Services, client: str) -> None:
    nodes: list[tuple[str, str, dict[str, Any]]] = [
        (f"c{i}", "customer", {"name": f"Customer {i}"}) for i in range(1, 6)
    ]
    nodes += [("p1", "product", {"price": 10}), ("p2", "product", {"price": 20})]
    nodes += [(f, "feedback", props) for f, props in FEEDBACK.items()]
    seed(
        services.sessions,
        client,
        nodes=nodes,
        purchases=PURCHASES,
        relationships=[("GAVE_FEEDBACK", "c1", f, {}) for f in FEEDBACK],
    )


def test_every_figure_equals_the_hand_computed_answer(services: Services) -> None:
    client = _client()
    _seed_history(services, client)
    board = compute_dashboard(services.sessions, client, month="2025-06", now=NOW)
    revenue, customers = board["metrics"]["revenue"], board["metrics"]["customers"]
    assert revenue == {
        "current_month": 1500.0,
        "previous_month": 1400.0,
        "growth_rate": 7.14,  # 100 * 100 / 1400
        "forecast_next_month": 1600.0,  # the linear trend continued
    }
    # VADER's compound scores of f1, f2, f3: 0.8622, -0.5267, 0.2023 (vaderSentiment 3.3.2);
    # 5 * (c + 1) each: 9.311, 2.3665, 6.0115; mean 5.8963 -> 5.9
    assert customers == {
        "total_active": 3,  # c1, c2, c3
        "new_this_month": 1,  # c3
        "churn_rate": 50.0,  # c4 and c5 of c1, c2, c4, c5
        "satisfaction_score": 5.9,
    }
    assert board["metrics"]["operations"] == {
        "task_completion_rate": None,
        "average_response_time": None,
        "system_uptime": None,
        "agent_efficiency": None,
    }
    assert board["trends"] == {
        "revenue_trend": "increasing",  # slope 100 / mean 1250 = 8 % a month
        "customer_growth": "shrinking",  # (1 new - 2 churned) / 4 = -25 %
        "operational_efficiency": None,
    }
    details = board["details"]
    assert details["period"] == {
        "month": "2025-06",
        "reference_date": "2025-06-30",
        "basis": "requested",
        "activity_window_days": 90,
        "partial": False,
        "max_months": 36,
    }
    assert details["revenue"]["monthly"] == [
        {"month": f"2025-{m:02d}", "revenue": v} for m, v in enumerate(MONTHLY, start=1)
    ]
    assert details["revenue"]["purchases_this_month"] == 2
    assert details["revenue"]["top_customer_share"] == 53.33  # c1's 800 of 1500
    assert details["forecast"]["backtest"] == {"mae": 0.0, "mape": 0.0, "points": 3}
    assert (details["forecast"]["fitted_months"], details["forecast"]["horizon_months"]) == (6, 1)
    assert details["revenue"]["previous_month_to_date"] == 1400.0  # complete: all of May
    assert details["forecast"]["method"] == "holt_linear"
    c = details["customers"]
    assert (c["active_at_start"], c["churned"], c["at_risk"], c["revenue_at_risk"]) == (
        4,
        2,
        1,
        600.0,
    )
    assert c["feedback_count"] == 3
    assert c["negative_feedback_share"] == 33.33  # f2 of 3
    # this week: c1, c2, c3, c5 were active a week ago, c5 has churned since; last week: 0 of 3
    assert (c["churn_rate_week"], c["churn_rate_previous_week"]) == (25.0, 0.0)
    assert details["ignored"] == {"purchases": 5, "feedback": 0}
    assert [a["rule"] for a in board["alerts"]] == [
        "churn_up_week_over_week",
        "satisfaction_below_threshold",  # 5.9 < 6
    ]
    alert = board["alerts"][0]
    assert alert["figures"] == {"churn_week": 25.0, "churn_previous_week": 0.0}
    assert alert["action_required"] is True and "25" in alert["message"]
    assert board["dashboard_id"].startswith("bi_dashboard_")
    assert board["generated_at"] == "2025-07-15T12:00:00Z"


def test_default_month_is_the_latest_purchase_s(services: Services) -> None:
    client = _client()
    _seed_history(services, client)
    board = compute_dashboard(services.sessions, client, now=NOW)
    assert board["details"]["period"]["basis"] == "latest_data"
    assert board["details"]["period"]["reference_date"] == "2025-07-02"
    # July to the 2nd (partial): 999 against June 1-2 (nothing) -> no growth rate; the forecast
    # is fitted on January..June (complete) and reaches August two steps ahead: 1500 + 2 * 100
    assert board["details"]["period"]["partial"] is True
    assert board["metrics"]["revenue"] == {
        "current_month": 999.0,
        "previous_month": 1500.0,
        "growth_rate": None,
        "forecast_next_month": 1700.0,
    }
    assert board["details"]["revenue"]["previous_month_to_date"] == 0.0
    assert board["details"]["forecast"]["horizon_months"] == 2
    assert board["trends"]["revenue_trend"] == "increasing"  # January..June, not July to date
    # the clock before the latest purchase: the reference is today
    earlier = compute_dashboard(services.sessions, client, now=datetime(2025, 6, 25, tzinfo=UTC))
    assert earlier["details"]["period"]["basis"] == "current"
    assert earlier["details"]["period"]["reference_date"] == "2025-06-25"
    # June 1-25 (1500) against May 1-25 (1400); July forecast from January..May: 1400 + 2 * 100
    assert earlier["metrics"]["revenue"] == {
        "current_month": 1500.0,
        "previous_month": 1400.0,
        "growth_rate": 7.14,
        "forecast_next_month": 1600.0,
    }


BUSINESS = {
    "revenue": ["current_month", "previous_month", "growth_rate", "forecast_next_month"],
    "customers": ["total_active", "new_this_month", "churn_rate", "satisfaction_score"],
}


def test_an_empty_graph_gives_null_for_every_business_figure(services: Services) -> None:
    board = compute_dashboard(services.sessions, _client(), now=NOW)
    for group, names in BUSINESS.items():
        for name in names:
            assert board["metrics"][group][name] is None, (group, name)
    assert board["trends"]["revenue_trend"] is None
    assert board["trends"]["customer_growth"] is None
    assert board["alerts"] == []
    details = board["details"]
    assert details["period"]["basis"] == "current"
    assert details["revenue"]["monthly"] == []
    assert details["forecast"]["backtest"] == {"mae": None, "mape": None, "points": 0}
    assert details["customers"]["revenue_at_risk"] is None
    assert details["customers"]["negative_feedback_share"] is None


def test_a_client_sees_only_its_own_data(services: Services) -> None:
    a, b = _client(), _client()
    _seed_history(services, a)
    seed(
        services.sessions,
        b,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[("c1", "p1", {"amount": 42.5, "date": "2025-06-03"})],
    )
    board_b = compute_dashboard(services.sessions, b, month="2025-06", now=NOW)
    assert board_b["metrics"]["revenue"]["current_month"] == 42.5
    assert board_b["metrics"]["revenue"]["previous_month"] is None
    assert board_b["metrics"]["customers"]["total_active"] == 1
    assert board_b["metrics"]["customers"]["satisfaction_score"] is None
    board_a = compute_dashboard(services.sessions, a, month="2025-06", now=NOW)
    assert board_a["metrics"]["revenue"]["current_month"] == 1500.0
    assert board_a["dashboard_id"] != board_b["dashboard_id"]


@pytest.mark.parametrize("month", ["2025-13", "2025-6", "June", "2025-08", "0000-01"])
def test_a_bad_or_future_month_is_refused(services: Services, month: str) -> None:
    with pytest.raises(InvalidDashboardPeriod):
        compute_dashboard(services.sessions, _client(), month=month, now=NOW)


def test_operations_figures_come_from_the_engine_s_records(services: Services) -> None:
    client, other = _client(), _client()
    day = timedelta(days=1)
    tasks = [  # (status, finished days ago)
        ("completed", 1), ("completed", 2), ("completed", 3), ("failed", 4),  # this week: 3/4
        ("completed", 8), ("completed", 9),  # last week: 2/2
        ("cancelled", 1),  # left out
        ("completed", 40),  # outside the 30-day window
    ]  # fmt: skip
    with services.sessions.begin() as s:
        for i, (status, ago) in enumerate(tasks):
            for owner in (client, other) if status != "failed" else (client,):
                tid = f"task_{owner}_{i}"
                s.execute(
                    text(
                        "INSERT INTO tasks (id, client_id, task_type, description, priority, "
                        "requirements, context, workflow, assigned_agents, status, progress, "
                        "partial_results, event_seq, dispatch_count, finished_at) VALUES "
                        "(:id, :c, 'x', '', 'medium', '{}', '{}', '{}', '[]', :st, 100, '{}', 0, 0, :f)"
                    ),
                    {"id": tid, "c": owner, "st": status, "f": NOW - ago * day},
                )
                stage_status = {"cancelled": "cancelled"}.get(status, status)
                for n, st in enumerate([stage_status, "completed", "skipped"]):
                    s.execute(
                        text(
                            "INSERT INTO stage_runs (task_id, name, agent, position, dependencies, "
                            "status, attempt, max_attempts, progress, finished_at) VALUES "
                            "(:t, :n, 'noop', :p, '[]', :st, 1, 1, 100, :f)"
                        ),
                        {"t": tid, "n": f"s{n}", "p": n, "st": st, "f": NOW - ago * day},
                    )
        s.execute(
            text(
                "INSERT INTO api_request_stats (client_id, minute, requests, total_ms) VALUES "
                "(:c, :m1, 3, 300), (:c, :m2, 1, 1500), (:c, :old, 100, 100000), (:o, :m1, 9, 9)"
            ),
            {"c": client, "o": other, "m1": NOW - day, "m2": NOW - 2 * day, "old": NOW - 31 * day},
        )
    board = compute_dashboard(services.sessions, client, now=NOW)
    ops = board["metrics"]["operations"]
    # tasks in 30 days: completed 5 (1, 2, 3, 8, 9 days ago), failed 1 -> 5/6
    assert ops["task_completion_rate"] == round(100 * 5 / 6, 2)
    # stages: per task s0 (the task's status) and s1 completed; s2 skipped, cancelled left out:
    # completed = 5 (s0) + 7 (s1 of the 7 tasks in the window) = 12 of 13 (one failed s0)
    assert ops["agent_efficiency"] == round(100 * 12 / 13, 2)
    assert ops["average_response_time"] == 0.45  # (300 + 1500) ms / 4 requests, in seconds
    d = board["details"]["operations"]
    assert (d["tasks_finished"], d["tasks_completed"], d["requests_timed"]) == (6, 5, 4)
    assert (d["completion_rate_week"], d["completion_rate_previous_week"]) == (75.0, 100.0)
    assert board["trends"]["operational_efficiency"] == "declining"
    assert "task_completion_below_threshold" in [a["rule"] for a in board["alerts"]]


def _rules(board: dict[str, Any]) -> list[str]:
    return [a["rule"] for a in board["alerts"]]


def test_a_partial_month_is_compared_like_for_like(services: Services) -> None:
    client = _client()
    seed(
        services.sessions,
        client,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[
            ("c1", "p1", {"amount": 100, "date": "2025-05-05"}),
            ("c1", "p1", {"amount": 900, "date": "2025-05-20"}),
            ("c1", "p1", {"amount": 150, "date": "2025-06-03"}),
        ],
    )
    board = compute_dashboard(
        services.sessions, client, month="2025-06", now=datetime(2025, 6, 10, 9, tzinfo=UTC)
    )
    # June 1-10: 150; May 1-10: 100 (the whole of May, 1000, is still previous_month)
    assert board["details"]["period"]["partial"] is True
    assert board["metrics"]["revenue"]["current_month"] == 150.0
    assert board["metrics"]["revenue"]["previous_month"] == 1000.0
    assert board["metrics"]["revenue"]["growth_rate"] == 50.0  # not -85 against all of May
    assert board["details"]["revenue"]["previous_month_to_date"] == 100.0
    assert "revenue_growth_negative" not in _rules(board)
    # one complete month (May) only: no forecast, no trend
    assert board["metrics"]["revenue"]["forecast_next_month"] is None
    assert board["trends"]["revenue_trend"] is None


def test_the_previous_month_s_days_are_clamped_to_its_length(services: Services) -> None:
    client = _client()
    seed(
        services.sessions,
        client,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[
            ("c1", "p1", {"amount": 40, "date": "2025-02-28"}),
            ("c1", "p1", {"amount": 60, "date": "2025-02-01"}),
            ("c1", "p1", {"amount": 50, "date": "2025-03-30"}),
        ],
    )
    board = compute_dashboard(
        services.sessions, client, month="2025-03", now=datetime(2025, 3, 30, 9, tzinfo=UTC)
    )
    # March 1-30 against February 1-28 (all of it): 50 vs 100
    assert board["details"]["revenue"]["previous_month_to_date"] == 100.0
    assert board["metrics"]["revenue"]["growth_rate"] == -50.0
    assert "revenue_growth_negative" in _rules(board)


def test_growth_against_a_negative_month_keeps_its_sign(services: Services) -> None:
    client = _client()
    seed(
        services.sessions,
        client,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[
            ("c1", "p1", {"amount": 50, "date": "2025-04-02"}),
            ("c1", "p1", {"amount": -150, "date": "2025-04-03"}),  # a refund
            ("c1", "p1", {"amount": 50, "date": "2025-05-02"}),
        ],
    )
    board = compute_dashboard(services.sessions, client, month="2025-05", now=NOW)
    # from -100 to 50: up 150 % of |-100|, not "-150 %"
    assert board["metrics"]["revenue"]["previous_month"] == -100.0
    assert board["metrics"]["revenue"]["growth_rate"] == 150.0
    assert "revenue_growth_negative" not in _rules(board)


def test_the_series_covers_the_last_36_months_at_most(services: Services) -> None:
    client = _client()
    seed(
        services.sessions,
        client,
        nodes=[("c1", "customer", {}), ("c2", "customer", {}), ("p1", "product", {})],
        purchases=[
            ("c1", "p1", {"amount": 10, "date": "1025-06-01"}),  # a typo for 2025
            ("c2", "p1", {"amount": 20, "date": "2025-05-01"}),
            ("c2", "p1", {"amount": 30, "date": "2025-06-01"}),
        ],
    )
    board = compute_dashboard(services.sessions, client, month="2025-06", now=NOW)
    monthly = board["details"]["revenue"]["monthly"]
    assert len(monthly) == 36  # not 12,001 months since 1025
    assert monthly[0] == {"month": "2022-07", "revenue": 0.0}
    assert monthly[-2:] == [
        {"month": "2025-05", "revenue": 20.0},
        {"month": "2025-06", "revenue": 30.0},
    ]
    assert board["details"]["ignored"]["purchases"] == 0  # outside the window, not wrong
    assert board["metrics"]["revenue"]["current_month"] == 30.0


def test_values_of_the_wrong_json_type_are_ignored(services: Services) -> None:
    client = _client()
    wrong_amounts: list[Any] = [True, {}, [], None, [5]]
    seed(
        services.sessions,
        client,
        nodes=[
            ("c1", "customer", {}),
            ("p1", "product", {}),
            ("f1", "feedback", {"text": 12345}),
            ("f2", "feedback", {"text": ["Great!"]}),
            ("f3", "feedback", {"text": "Terrible.", "date": "yesterday"}),  # unparseable date
            ("f4", "feedback", {"text": "Terrible.", "date": 20250601}),
        ],
        purchases=[("c1", "p1", {"amount": a, "date": "2025-06-02"}) for a in wrong_amounts]
        + [
            ("c1", "p1", {"amount": 10, "date": 20250602}),  # a date as a number
            ("c1", "p1", {"amount": 10, "date": ["2025-06-02"]}),
            ("c1", "p1", {"amount": 10, "date": "2025-06-02"}),
        ],
    )
    board = compute_dashboard(services.sessions, client, month="2025-06", now=NOW)
    assert board["metrics"]["revenue"]["current_month"] == 10.0
    assert board["details"]["ignored"] == {"purchases": 7, "feedback": 2}
    assert board["metrics"]["customers"]["satisfaction_score"] is None
    assert board["details"]["customers"]["feedback_count"] == 0


def test_huge_amounts_are_ignored_not_a_failure(services: Services) -> None:
    client = _client()
    digits = "9" * 5000
    seed(
        services.sessions,
        client,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[
            ("c1", "p1", {"amount": 1e160, "date": "2025-05-02"}),
            ("c1", "p1", {"amount": digits, "date": "2025-05-03"}),
            ("c1", "p1", '{"amount": ' + digits + ', "date": "2025-05-04"}'),
            ("c1", "p1", {"amount": -1e12, "date": "2025-05-05"}),  # the cap itself
            ("c1", "p1", {"amount": "1000000000000", "date": "2025-05-05"}),
            ("c1", "p1", {"amount": 999_999_999_999.5, "date": "2025-04-05"}),  # just below
            ("c1", "p1", {"amount": 100, "date": "2025-05-06"}),
            ("c1", "p1", {"amount": 100, "date": "2025-03-06"}),
        ],
    )
    board = compute_dashboard(services.sessions, client, month="2025-05", now=NOW)
    revenue = board["metrics"]["revenue"]
    assert board["details"]["ignored"]["purchases"] == 5
    assert revenue["current_month"] == 100.0
    assert revenue["previous_month"] == 999_999_999_999.5
    assert revenue["growth_rate"] == -100.0  # 100 vs 999,999,999,999.5, rounded to 2
    assert revenue["forecast_next_month"] is not None


def test_feedback_is_bounded_in_count_length_and_characters(services: Services) -> None:
    client = _client()
    seed(
        services.sessions,
        client,
        nodes=[(f"f{i}", "feedback", {"text": f"{i}" * 10}) for i in range(1, 6)],
    )
    with services.sessions() as s:
        reference = NOW.date()

        def texts(**limits: int) -> list[str]:
            return business.feedback(s, client, reference=reference, **limits).texts

        assert texts(chars=3) == ["111", "222", "333", "444", "555"]  # cut in SQL
        assert texts(limit=2) == ["1" * 10, "2" * 10]  # the newest first, then by id
        assert texts(chars=3, budget=7) == ["111", "222"]  # 3 + 3 <= 7 < 3 + 3 + 3
    assert (business.MAX_FEEDBACK, business.FEEDBACK_TEXT_CHARS) == (20_000, 2_000)
