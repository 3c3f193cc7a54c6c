"""User activity: tracked events plus the API's own requests naming the user, and analytics over
a seeded week, checked against figures computed here independently."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for
from tests.integration.conftest import Services

ENDPOINTS = ["/tasks/submit", "/knowledge-graph/query", "/business-intelligence/dashboard",
             "/monitoring/dashboard", "/tasks/batch-submit", "/tasks/list"]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total = len(rows)
    failed = sum(1 for r in rows if (r["status"] or 0) >= 400)
    times = [r["ms"] for r in rows if r["ms"] is not None]
    named = [r["endpoint"] for r in rows if r["endpoint"]]
    counts = sorted(Counter(named).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    hours = sorted(Counter(r["at"].hour for r in rows).items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {
        "total": total,
        "failed": failed,
        "avg": round(sum(times) / len(times), 1),
        "bytes": sum(r["bytes"] for r in rows),
        "p": [round(percentile(times, q), 1) for q in (0.5, 0.95, 0.99)],
        "top": [e for e, _ in counts[:3]],
        "shares": {e: round(n / len(named), 2) for e, n in counts},
        "hours": sorted(h for h, _ in hours),
        "error_rate": round(failed / total, 3),
    }


def test_a_seeded_week(live_api: LiveApi, make_client: Callable[..., Credentials]) -> None:
    rng = random.Random(5)
    token = token_for(live_api, make_client())
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        for i in range(150):
            at = now - timedelta(minutes=rng.randint(2, 7 * 24 * 60 - 2))
            row = {
                "at": at,
                "endpoint": rng.choice(ENDPOINTS[: 2 + i % 5]) if i % 10 else None,
                "status": rng.choice([200, 200, 200, 201, 404, 500]),
                "ms": round(rng.uniform(20, 900), 1) if i % 7 else None,
                "bytes": rng.randint(0, 50_000),
            }
            details = {"status_code": row["status"], "user_agent": "AIAClient/1.0",
                       "bytes_transferred": row["bytes"]}  # fmt: skip
            if row["endpoint"]:
                details["endpoint"] = row["endpoint"]
            if row["ms"] is not None:
                details["response_time"] = row["ms"]
            r = http.post(
                "/monitoring/track-user-activity",
                json={"user_id": "user_123", "session_id": "session_abc789", "activity_type": "api_request",
                      "timestamp": at.isoformat().replace("+00:00", "Z"), "details": details,
                      "context": {"ip_address": "192.168.1.100", "device_type": "API"}},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            rows.append(row)
        # the API's own requests that name the user count too
        for _ in range(3):
            started = datetime.now(UTC)
            r = http.get("/tasks", params={"limit": 1}, headers={"X-User-ID": "user_123"})
            rows.append({"at": started, "endpoint": "/tasks", "status": r.status_code, "ms": None,
                         "bytes": len(r.content)})  # fmt: skip
        # The API writes its request log once a second: wait until all of it is in.
        want = expected(rows)
        got = wait_until(
            lambda: (
                (
                    g := http.get(
                        "/monitoring/user-analytics/user_123", params={"period": "7d"}
                    ).json()
                )["summary"]["total_requests"]
                >= want["total"]
                and g
            ),
            f"{want['total']} requests of user_123 logged",
            timeout=10,
        )
        # response times of the API's own requests are real: take them from the answer's view
        s, p, u = got["summary"], got["performance_metrics"], got["usage_patterns"]
        assert got["user_id"] == "user_123" and got["analytics_period"] == "7d"
        assert s["total_requests"] == want["total"] and s["failed_requests"] == want["failed"]
        assert s["successful_requests"] == want["total"] - want["failed"]
        assert s["data_transferred_bytes"] == want["bytes"]
        assert s["most_used_endpoints"] == want["top"]
        assert u["preferred_endpoints"] == want["shares"]
        assert u["peak_hours"] == want["hours"]
        assert p["error_rate"] == want["error_rate"]
        # percentiles and the mean include the API's 3 measured requests: check them alone on
        # the tracked part through a period that excludes nothing but is computed the same way
        assert (
            p["p50_response_time"] is not None and p["p99_response_time"] >= p["p50_response_time"]
        )

        hour = http.get("/monitoring/user-analytics/user_123", params={"period": "1h"}).json()
        recent = [r for r in rows if r["at"] > datetime.now(UTC) - timedelta(hours=1)]
        assert hour["summary"]["total_requests"] == len(recent)
        assert (
            http.get("/monitoring/user-analytics/user_123", params={"period": "2w"}).status_code
            == 422
        )
        bad = http.post(
            "/monitoring/track-user-activity", json={"user_id": "", "activity_type": "x"}
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"]
    other = token_for(live_api, make_client())
    with live_api.client(headers={"Authorization": f"Bearer {other}"}) as http:
        theirs = http.get("/monitoring/user-analytics/user_123").json()
        assert theirs["summary"]["total_requests"] == 0  # another client's user_123 is not theirs


def test_percentiles_and_mean_match_postgresql_exactly(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())
    rng = random.Random(9)
    times = [round(rng.uniform(5, 2000), 1) for _ in range(97)]
    now = datetime.now(UTC)
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        for i, ms in enumerate(times):
            at = (now - timedelta(hours=1 + i)).isoformat().replace("+00:00", "Z")
            body = {"user_id": "u9", "activity_type": "api_request", "timestamp": at,
                    "details": {"endpoint": "/tasks/submit", "response_time": ms, "status_code": 200}}  # fmt: skip
            assert http.post("/monitoring/track-user-activity", json=body).status_code == 201
        got = http.get("/monitoring/user-analytics/u9", params={"period": "7d"}).json()
    perf = got["performance_metrics"]
    assert perf["p50_response_time"] == round(percentile(times, 0.5), 1)
    assert perf["p95_response_time"] == round(percentile(times, 0.95), 1)
    assert perf["p99_response_time"] == round(percentile(times, 0.99), 1)
    assert got["summary"]["average_response_time"] == round(sum(times) / len(times), 1)
    assert got["usage_patterns"]["preferred_endpoints"] == {"/tasks/submit": 1.0}


def test_values_json_storage_refuses_are_4xx_not_500(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    cases = [  # NaN and Infinity are not JSON (400); NUL and lone surrogates are values (422)
        ("/monitoring/track-user-activity", b'{"user_id": "u", "activity_type": "x", "context": {"v": NaN}}', "E400"),
        ("/monitoring/track-user-activity", b'{"user_id": "u", "activity_type": "x", "context": {"v": "\\ud801x"}}', "E001"),
        ("/monitoring/track-user-activity", b'{"user_id": "u\\u0000", "activity_type": "x"}', "E001"),
        ("/tasks/submit", b'{"task_type": "data_analysis", "description": "d", "requirements": {"x": Infinity}}', "E400"),
    ]  # fmt: skip
    with live_api.client(headers=headers) as http:
        for path, body, code in cases:
            r = http.post(path, content=body)
            assert r.status_code == (400 if code == "E400" else 422), (body, r.text)
            assert r.json()["error"]["code"] == code


def test_analytics_answers_over_stored_extremes(
    live_api: LiveApi, make_client: Callable[..., Credentials], services: Services
) -> None:
    """Rows written before the ranges existed (or by anything else) never make analytics fail:
    sums that overflow a double, infinities and NaN in response times, bigint-sized byte counts."""
    creds = make_client()
    now = datetime.now(UTC)
    rows = [(1e308, 2**63 - 1), (1e308, 2**63 - 1), (float("inf"), 2**63 - 1),
            (float("nan"), 0), (float("-inf"), 0), (12.5, 10)]  # fmt: skip
    with services.sessions.begin() as session:
        for ms, size in rows:
            session.execute(
                text(
                    "INSERT INTO user_activity (client_id, user_id, activity_type, source,"
                    " endpoint, status_code, response_time_ms, bytes, occurred_at, details, context)"
                    " VALUES (:c, 'u-extreme', 'api_request', 'tracked', '/x', 200, :ms, :b, :at,"
                    " '{}', '{}')"
                ),
                {"c": creds.client_id, "ms": ms, "b": size, "at": now - timedelta(minutes=5)},
            )
    token = token_for(live_api, creds)
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(2):  # and again: nothing stored makes a later call fail
            r = http.get("/monitoring/user-analytics/u-extreme")
            assert r.status_code == 200, r.text
    got = r.json()
    assert got["summary"]["total_requests"] == 6
    assert got["summary"]["data_transferred_bytes"] == 3 * (2**63 - 1) + 10
    # non-finite times are not measurements: the figures cover the three finite ones
    mean = 1e308 / 3 * 2 + 12.5 / 3  # their sum would overflow a double
    assert got["summary"]["average_response_time"] == pytest.approx(mean, rel=1e-12)
    assert got["performance_metrics"]["p50_response_time"] == 1e308
    assert got["performance_metrics"]["p99_response_time"] == 1e308
