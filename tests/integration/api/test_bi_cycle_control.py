"""Optimization cycles without a worker running: cancelling a cycle cancels its workflow (its
stages never run, even once a worker starts), the daily quota (429 with Retry-After), tenancy,
Idempotency-Key, and 422 for a bad body — all over HTTP."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from aia_engine.bi.cycles import _check_quota
from aia_engine.db.models import BiCycle, StageRun
from aia_engine.errors import CycleQuotaExceeded
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
    again = http.post(f"/business-intelligence/cycles/{oid}/cancel")  # already cancelled: 200
    assert again.status_code == 200 and again.json()["cancelled_stages"] == []
    # A worker now takes the cancelled workflow's messages, then a later cycle's: the
    # cancelled stages never ran.
    proc = start_worker()
    try:
        later = http.post(EXECUTE, json=BODY).json()
        assert wait_task(http, later["task_id"], timeout=60)["status"] == "completed"
        ended = http.post(f"/business-intelligence/cycles/{later['optimization_id']}/cancel")
        assert ended.status_code == 409 and ended.json()["error"]["code"] == "E009"
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


def _cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "parts",
    [
        ["2026-01-01T00:00:00+00:00", "opt_a\u0000b"],  # NUL: psycopg DataError, was 500
        ["2026-01-01T00:00:00+00:00", "opt_\ud800"],  # lone surrogate: UnicodeEncodeError, 500
        ["2026-01-01T00:00:00+00:00", 5],  # not a string: was silently str()'d
        ["2026-01-01T00:00:00+00:00", ["x"]],
        [20260101, "opt_a"],
    ],
)
@pytest.mark.parametrize("path", ["/business-intelligence/cycles", "/tasks"])
def test_crafted_cursors_are_422(
    client_for: Callable[[], httpx.Client], parts: object, path: str
) -> None:
    r = client_for().get(path, params={"cursor": _cursor(parts)})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "E001" and error["details"]["field"] == "cursor"


INTERNAL = {"look": {"agent": "bi_analysis_agent", "params": {"focus_area": "revenue"}}}


def test_the_cycles_agents_are_refused_outside_cycles(
    api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    """Otherwise any client could run the cycle's analyses through /tasks, past the quota."""
    creds = make_client(scopes="read write admin")
    with api.client(headers={"Authorization": f"Bearer {token_for(api, creds)}"}) as http:
        for path, body, field in [
            ("/tasks/orchestrate", {"task_type": "x", "workflow": INTERNAL},
             "workflow.look.agent"),
            ("/tasks/submit", {"task_type": "x", "workflow": INTERNAL}, "workflow.look.agent"),
            ("/tasks/submit", {"task_type": "noop", "agents_required": ["bi_plan_agent"]},
             "agents_required"),
            ("/task-types", {"name": "sneaky_cycle", "description": "d", "workflow": INTERNAL},
             "workflow.look.agent"),
        ]:  # fmt: skip
            r = http.post(path, json=body)
            assert r.status_code == 422, (path, r.text)
            error = r.json()["error"]
            assert error["code"] == "E074" and error["details"]["field"] == field, (path, error)
        r = http.post(
            "/tasks/batch-submit", json={"tasks": [{"task_type": "x", "workflow": INTERNAL}]}
        )
        item = r.json()["tasks"][0] if "tasks" in r.json() else r.json()
        assert "E074" in json.dumps(item), r.text
        assert http.get("/tasks").json()["tasks"] == []
        # the cycle's own path still runs them
        assert http.post(EXECUTE, json=BODY).status_code == 202


def test_concurrent_starts_respect_the_quota_exactly(
    client_for: Callable[[], httpx.Client],
) -> None:
    http = client_for()
    barrier = threading.Barrier(PER_DAY + 4)

    def post(_: int) -> int:
        barrier.wait(10)
        return http.post(EXECUTE, json=BODY).status_code

    with ThreadPoolExecutor(PER_DAY + 4) as pool:
        codes = sorted(pool.map(post, range(PER_DAY + 4)))
    assert codes == [202] * PER_DAY + [429] * 4
    assert len(http.get("/business-intelligence/cycles").json()["cycles"]) == PER_DAY


def test_concurrent_repeats_of_the_last_allowed_cycle_replay_it(
    client_for: Callable[[], httpx.Client],
) -> None:
    """The repeats wait on the quota lock behind the first, then find its cycle: 200, not 429."""
    http = client_for()
    for _ in range(PER_DAY - 1):
        assert http.post(EXECUTE, json=BODY).status_code == 202
    barrier = threading.Barrier(5)

    def post(_: int) -> httpx.Response:
        barrier.wait(10)
        return http.post(EXECUTE, json=BODY, headers={"Idempotency-Key": "last-one"})

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(post, range(5)))
    assert sorted(r.status_code for r in answers) == [200] * 4 + [202], [r.text for r in answers]
    assert len({r.json()["optimization_id"] for r in answers}) == 1
    assert http.post(EXECUTE, json=BODY).status_code == 429  # and the quota is used up


def test_retry_after_is_when_enough_cycles_leave_the_window(
    services: Services, client_for: Callable[[], httpx.Client]
) -> None:
    http = client_for()
    ids = [http.post(EXECUTE, json=BODY).json()["optimization_id"] for _ in range(PER_DAY)]
    now = datetime.now(UTC)
    ages = {ids[0]: 20, ids[1]: 10, ids[2]: 5}  # hours
    with services.sessions.begin() as session:
        for oid, hours in ages.items():
            session.execute(
                update(BiCycle)
                .where(BiCycle.optimization_id == oid)
                .values(created_at=now - timedelta(hours=hours))
            )
        client_id = session.scalar(
            select(BiCycle.client_id).where(BiCycle.optimization_id == ids[0])
        )
    r = http.post(EXECUTE, json=BODY)
    assert r.status_code == 429
    assert 4 * 3600 - 60 < int(r.headers["Retry-After"]) <= 4 * 3600  # the oldest leaves in 4 h
    # with the limit lowered to 2 (3 cycles in the window), 2 must leave for one more to fit:
    # the 2nd oldest, in 14 h (not the oldest's 4 h); with 1, the 3rd oldest, in 19 h
    with services.sessions.begin() as session, pytest.raises(CycleQuotaExceeded) as raised:
        _check_quota(session, client_id, 2, now)
    assert 14 * 3600 - 60 < raised.value.details["retry_after_s"] <= 14 * 3600
    with services.sessions.begin() as session, pytest.raises(CycleQuotaExceeded) as raised:
        _check_quota(session, client_id, 1, now)
    assert 19 * 3600 - 60 < raised.value.details["retry_after_s"] <= 19 * 3600
