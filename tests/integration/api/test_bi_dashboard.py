"""GET /business-intelligence/dashboard over HTTP: the example graph's real figures, the month
parameter, the cache (fresh, stale with one recompute under concurrency), per-client request
durations recorded by the API itself."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import text

from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.api.guide_client import AIAAPIClient
from tests.integration.bi.seed import seed
from tests.integration.conftest import Services

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
PATH = "/business-intelligence/dashboard"


def example_month_revenue() -> tuple[str, int, float, float, float]:
    """(latest purchase month, its day, its revenue to that day, the month before's, the month
    before's over the same days) by plain Python from the file."""
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]
    purchases = [r["properties"] for r in rows if r.get("type") == "PURCHASED"]
    latest = max(date.fromisoformat(p["date"]) for p in purchases)
    month = f"{latest:%Y-%m}"
    before = f"{date(latest.year - (latest.month == 1), (latest.month - 2) % 12 + 1, 1):%Y-%m}"
    current = sum(p["amount"] for p in purchases if p["date"].startswith(month))
    previous = sum(p["amount"] for p in purchases if p["date"].startswith(before))
    same_days = sum(
        p["amount"]
        for p in purchases
        if p["date"].startswith(before) and int(p["date"][8:10]) <= latest.day
    )
    return month, latest.day, round(current, 2), round(previous, 2), round(same_days, 2)


@pytest.fixture(scope="module")
def api(services: Services) -> Iterator[LiveApi]:
    settings = services.settings.model_copy(
        update={
            "bi_dashboard_ttl_s": 1.0,
            "bi_dashboard_stale_s": 60.0,
            "bi_dashboard_wait_s": 1.0,
            "metrics_flush_s": 0.2,
        }
    )
    app = create_app(settings)
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client_for(
    api: LiveApi, make_client: Callable[..., Credentials]
) -> Iterator[Callable[[], tuple[Credentials, httpx.Client]]]:
    opened: list[httpx.Client] = []

    def make() -> tuple[Credentials, httpx.Client]:
        creds = make_client(scopes="read write")
        http = api.client(headers={"Authorization": f"Bearer {token_for(api, creds)}"})
        opened.append(http)
        return creds, http

    yield make
    for http in opened:
        http.close()


def test_the_example_graph_gives_real_figures(
    services: Services,
    api: LiveApi,
    client_for: Callable[[], tuple[Credentials, httpx.Client]],
    tmp_path: Path,
) -> None:
    creds, http = client_for()
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(EXAMPLE), "--client", creds.client_id],
        env={**services.env, "AIA_DATA_DIR": str(tmp_path)},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    month, day, current, previous, same_days = example_month_revenue()
    assert (month, day) == ("2025-06", 22)  # June to the 22nd: a partial month
    r = http.get(PATH)
    assert r.status_code == 200, r.text
    board = r.json()
    revenue = board["metrics"]["revenue"]
    assert board["details"]["period"]["month"] == month
    assert board["details"]["period"]["basis"] == "latest_data"
    assert revenue["current_month"] == current
    assert revenue["previous_month"] == previous
    # like for like: June 1-22 against May 1-22
    assert revenue["growth_rate"] == round(100 * (current - same_days) / same_days, 2)
    assert board["details"]["revenue"]["previous_month_to_date"] == same_days
    assert board["details"]["period"]["partial"] is True
    assert revenue["forecast_next_month"] is not None
    assert board["details"]["forecast"]["fitted_months"] == 17  # 2024-01 .. 2025-05
    assert board["metrics"]["customers"]["satisfaction_score"] is not None
    assert 0 <= board["metrics"]["customers"]["satisfaction_score"] <= 10
    assert board["details"]["customers"]["feedback_count"] == 150  # undated: all of them
    assert len(board["details"]["revenue"]["monthly"]) == 18  # 2024-01 .. 2025-06
    assert board["details"]["forecast"]["backtest"]["points"] == 12
    # the guide's own Python client reads the same figures (the SDK example's
    # dashboard.metrics.revenue.current_month, the TS example's growth_rate and satisfaction)
    guide = AIAAPIClient(creds.client_id, creds.client_secret, base_url=api.url)
    seen = guide.make_request("GET", PATH)["metrics"]
    assert seen["revenue"]["current_month"] == current
    assert seen["revenue"]["growth_rate"] == revenue["growth_rate"]
    assert (
        seen["customers"]["satisfaction_score"]
        == board["metrics"]["customers"]["satisfaction_score"]
    )
    r = http.get(PATH, params={"month": "2024-06"})
    assert r.json()["details"]["period"]["reference_date"] == "2024-06-30"


@pytest.mark.parametrize("month", ["2024-13", "24-01", "2999-01"])
def test_a_bad_month_is_422_in_the_envelope(
    client_for: Callable[[], tuple[Credentials, httpx.Client]], month: str
) -> None:
    _, http = client_for()
    r = http.get(PATH, params={"month": month})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "E068"
    assert r.json()["error"]["details"]["field"] == "month"


def test_the_dashboard_needs_a_token(api: LiveApi) -> None:
    with api.client() as http:
        assert http.get(PATH).status_code == 401


def test_served_from_cache_then_stale_with_one_recompute(
    services: Services,
    api: LiveApi,
    client_for: Callable[[], tuple[Credentials, httpx.Client]],
) -> None:
    creds, http = client_for()
    seed(
        services.sessions,
        creds.client_id,
        nodes=[("c1", "customer", {}), ("p1", "product", {})],
        purchases=[("c1", "p1", {"amount": 10, "date": "2025-05-03"})],
    )
    first = http.get(PATH).json()
    assert first["details"]["cache"]["state"] == "computed"
    second = http.get(PATH).json()
    assert second["details"]["cache"]["hit"] is True
    assert second["details"]["cache"]["state"] == "fresh"
    assert second["generated_at"] == first["generated_at"]
    assert second["metrics"] == first["metrics"]

    # more data, and the cached answer goes stale (TTL 1 s): 8 concurrent requests are all
    # answered from the cache, and one of them started the one recompute
    seed(
        services.sessions,
        creds.client_id,
        nodes=[("c2", "customer", {})],
        purchases=[("c2", "p1", {"amount": 5, "date": "2025-05-04"})],
    )
    cache = api.app.state.resources.bi_dashboards
    started = cache.recomputes
    barrier = threading.Barrier(8)
    answers: list[dict[str, Any]] = []

    def ask() -> None:
        with api.client(headers=dict(http.headers)) as own:
            barrier.wait()
            answers.append(own.get(PATH).json())

    # wait until the entry is stale again, then ask 8 at once
    wait_until(lambda: _age(services, creds.client_id) > 1.2 or None, "staleness", timeout=10)
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    cache.join()
    assert len(answers) == 8
    assert all(a["details"]["cache"]["hit"] for a in answers)
    stale = [a for a in answers if a["details"]["cache"]["state"] == "stale"]
    assert sum(a["details"]["cache"]["refreshing"] for a in stale) == 1
    assert cache.recomputes == started + 1
    fresh = http.get(PATH).json()
    assert fresh["details"]["cache"]["state"] == "fresh"
    assert fresh["metrics"]["revenue"]["current_month"] == 15.0  # the recompute saw c2
    assert fresh["generated_at"] > first["generated_at"]


def _age(services: Services, client_id: str) -> float:
    raw = redis.Redis.from_url(services.redis_url).get(f"aia:bi:dashboard:{client_id}:latest")
    return 0.0 if raw is None else time.time() - float(json.loads(raw)["computed_at"])


def test_the_api_records_each_client_s_request_durations(
    services: Services, client_for: Callable[[], tuple[Credentials, httpx.Client]]
) -> None:
    creds, http = client_for()
    with http.stream("GET", "/tasks/stream") as stream:  # an event stream: not a response time
        assert stream.headers["content-type"].startswith("text/event-stream")
        next(stream.iter_bytes())
    for _ in range(5):
        assert http.get("/tasks").status_code == 200
    q = text("SELECT sum(requests), sum(total_ms) FROM api_request_stats WHERE client_id = :c")

    def recorded() -> tuple[int, float] | None:
        with services.sessions() as s:
            n, ms = s.execute(q, {"c": creds.client_id}).one()
        return (int(n), float(ms)) if n and n >= 5 else None  # flushed every 0.2 s

    n, ms = wait_until(recorded, "the request figures to be flushed", timeout=10)
    assert n == 5 and ms > 0  # the five GETs; the stream is not counted
    board = http.get(PATH).json()
    ops = board["metrics"]["operations"]
    assert ops["average_response_time"] is not None and ops["average_response_time"] > 0
    assert board["details"]["operations"]["requests_timed"] >= 5


def test_each_client_gets_its_own_dashboard_through_the_cache(
    services: Services, client_for: Callable[[], tuple[Credentials, httpx.Client]]
) -> None:
    (a, http_a), (b, http_b) = client_for(), client_for()
    for creds, amount in ((a, 100), (b, 7)):
        seed(
            services.sessions,
            creds.client_id,
            nodes=[("c1", "customer", {}), ("p1", "product", {})],
            purchases=[("c1", "p1", {"amount": amount, "date": "2025-04-10"})],
        )
    for _ in range(2):  # computed, then served from the cache: same month, own figures
        board_a = http_a.get(PATH, params={"month": "2025-04"}).json()
        board_b = http_b.get(PATH, params={"month": "2025-04"}).json()
        assert board_a["metrics"]["revenue"]["current_month"] == 100.0
        assert board_b["metrics"]["revenue"]["current_month"] == 7.0
        assert board_a["dashboard_id"] != board_b["dashboard_id"]
    assert board_a["details"]["cache"]["state"] == board_b["details"]["cache"]["state"] == "fresh"


def test_a_request_that_cannot_get_a_computation_in_time_is_503(
    services: Services, api: LiveApi, client_for: Callable[[], tuple[Credentials, httpx.Client]]
) -> None:
    creds, http = client_for()
    cache = api.app.state.resources.bi_dashboards
    lock = cache.key(creds.client_id, "2025-01") + ":lock"
    conn = redis.Redis.from_url(services.redis_url)
    conn.set(lock, "another-process", ex=30)  # another API process is computing it
    try:
        r = http.get(PATH, params={"month": "2025-01"})
    finally:
        conn.delete(lock)
        conn.close()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "E503"
    assert r.headers["Retry-After"] == "5"
