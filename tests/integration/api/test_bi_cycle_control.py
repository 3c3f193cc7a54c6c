"""Optimization cycles without a worker running: cancelling a cycle cancels its workflow (its
stages never run, even once a worker starts), the daily quota (429 with Retry-After), tenancy,
Idempotency-Key, and 422 for a bad body — all over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from aia_engine.db.models import StageRun
from api.app import create_app
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for, wait_task
from tests.integration.conftest import Services, WorkerFactory

pytestmark = pytest.mark.timeout(120)
EXECUTE = "/business-intelligence/execute-cycle"
BODY = {
    "cycle_type": "monthly_optimization",
    "focus_areas": ["revenue"],
    "constraints": {"budget_limit": 1000, "risk_tolerance": "low"},
}
PER_DAY = 3


@pytest.fixture(scope="module")
def api(services: Services) -> Iterator[LiveApi]:
    settings = services.settings.model_copy(update={"bi_cycles_per_day": PER_DAY})
    app = create_app(settings)
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def client_for(
    api: LiveApi, make_client: Callable[..., Credentials]
) -> Iterator[Callable[[], httpx.Client]]:
    opened: list[httpx.Client] = []

    def make() -> httpx.Client:
        creds = make_client(scopes="read write")
        http = api.client(headers={"Authorization": f"Bearer {token_for(api, creds)}"})
        opened.append(http)
        return http

    yield make
    for http in opened:
        http.close()


def test_cancelling_a_cycle_cancels_its_workflow(
    services: Services, client_for: Callable[[], httpx.Client], start_worker: WorkerFactory
) -> None:
    http = client_for()
    started = http.post(EXECUTE, json=BODY).json()
    oid, task_id = started["optimization_id"], started["task_id"]
    r = http.post(f"/business-intelligence/cycles/{oid}/cancel")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "optimization_id": oid,
        "status": "cancelled",
        "task_id": task_id,
        "cancelled_stages": [
            "analyze_revenue", "generate_strategies", "select_strategies", "build_plan"
        ],
    }  # fmt: skip
    assert http.get(f"/tasks/{task_id}").json()["status"] == "cancelled"
    assert http.post(f"/business-intelligence/cycles/{oid}/cancel").status_code == 200
    # A worker now takes the cancelled workflow's messages, then a later cycle's: the
    # cancelled stages never ran.
    proc = start_worker()
    try:
        later = http.post(EXECUTE, json=BODY).json()
        assert wait_task(http, later["task_id"], timeout=60)["status"] == "completed"
    finally:
        proc.terminate()
        proc.wait(20)
    view = http.get(f"/business-intelligence/cycles/{oid}").json()
    assert view["status"] == "cancelled" and view["optimization_plan"] is None
    assert {s["status"] for s in view["stages"]} == {"cancelled"}
    with services.sessions() as session:
        rows = session.scalars(select(StageRun).where(StageRun.task_id == task_id)).all()
    assert [(r.attempt, r.started_at, r.output) for r in rows] == [(0, None, None)] * 4


def test_the_daily_quota(client_for: Callable[[], httpx.Client]) -> None:
    http = client_for()
    for _ in range(PER_DAY):
        assert http.post(EXECUTE, json=BODY).status_code == 202
    r = http.post(EXECUTE, json=BODY)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "E073"
    assert 86_000 < int(r.headers["Retry-After"]) <= 86_400
    # another client has its own quota
    assert client_for().post(EXECUTE, json=BODY).status_code == 202


def test_tenancy(client_for: Callable[[], httpx.Client]) -> None:
    a, b = client_for(), client_for()
    oid = a.post(EXECUTE, json=BODY).json()["optimization_id"]
    assert a.get(f"/business-intelligence/cycles/{oid}").status_code == 200
    assert b.get(f"/business-intelligence/cycles/{oid}").status_code == 404
    assert b.post(f"/business-intelligence/cycles/{oid}/cancel").status_code == 404
    assert b.get("/business-intelligence/cycles").json()["cycles"] == []
    assert [
        c["optimization_id"] for c in a.get("/business-intelligence/cycles").json()["cycles"]
    ] == [oid]


def test_idempotency_key(client_for: Callable[[], httpx.Client]) -> None:
    http = client_for()
    key = {"Idempotency-Key": "cycle-1"}
    first = http.post(EXECUTE, json=BODY, headers=key)
    again = http.post(EXECUTE, json=BODY, headers=key)
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["optimization_id"] == first.json()["optimization_id"]
    assert len(http.get("/business-intelligence/cycles").json()["cycles"]) == 1
    other = {**BODY, "focus_areas": ["customer_satisfaction"]}
    conflict = http.post(EXECUTE, json=other, headers=key)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "E009"


def test_list_pages(client_for: Callable[[], httpx.Client]) -> None:
    http = client_for()
    made = [http.post(EXECUTE, json=BODY).json()["optimization_id"] for _ in range(3)]
    first = http.get("/business-intelligence/cycles", params={"limit": 2}).json()
    rest = http.get(
        "/business-intelligence/cycles", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [c["optimization_id"] for c in first["cycles"] + rest["cycles"]] == made[::-1]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("constraints", "field"),
    [
        ({"budget_limit": -5}, "constraints.budget_limit"),
        ({"budget_limit": 10, "time_horizon": "forever"}, "constraints.time_horizon"),
        ({"budget_limit": 10, "risk_tolerance": "reckless"}, "constraints.risk_tolerance"),
    ],
)
def test_bad_constraints_are_422_in_the_envelope(
    client_for: Callable[[], httpx.Client], constraints: dict[str, object], field: str
) -> None:
    http = client_for()
    r = http.post(EXECUTE, json={**BODY, "constraints": constraints})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "E072" and error["details"]["field"] == field
    assert http.get("/business-intelligence/cycles").json()["cycles"] == []


def test_unknown_cycle_is_404(client_for: Callable[[], httpx.Client]) -> None:
    assert client_for().get("/business-intelligence/cycles/opt_nothing").status_code == 404
