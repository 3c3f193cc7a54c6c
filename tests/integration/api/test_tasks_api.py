"""Task endpoints against a live server and a real worker: the guide's contract, tenancy, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, wait_healthy, wait_task
from tests.integration.api.guide_client import AIAAPIClient

pytestmark = pytest.mark.usefixtures("worker")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GUIDE_SUBMIT = json.loads((EXAMPLES / "submit_data_analysis.json").read_text())
GUIDE_ORCHESTRATE = json.loads((EXAMPLES / "complex_analysis.json").read_text())


def assert_fields(body: dict[str, Any], example: dict[str, Any]) -> None:
    """Every field of the guide's example is present with the same JSON type."""
    for key, value in example.items():
        assert key in body, key
        if value is not None and body[key] is not None:
            assert type(body[key]) is type(value) or (
                isinstance(value, float) and isinstance(body[key], int)
            ), key


def test_guides_python_client_runs_unchanged(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    client = AIAAPIClient(creds.client_id, creds.client_secret, base_url=live_api.url)
    wait_healthy(live_api)  # the module's worker, just started, answered a background ping
    health = client.make_request("GET", "/health")
    assert health["status"] == "healthy"
    accepted = client.make_request("POST", "/tasks/submit", GUIDE_SUBMIT)
    task_id = accepted["task_id"]
    task = wait_until(
        lambda: (
            (t := client.make_request("GET", f"/tasks/{task_id}"))["status"]
            in ("completed", "failed")
            and t
        ),
        f"task {task_id} to end",
        timeout=60,
        interval=0.2,
    )
    assert task["status"] == "completed" and task["results"]["sentiment"]["total_texts"] == 30


def test_health_contract(live_api: LiveApi) -> None:
    wait_healthy(live_api)
    with live_api.client() as http:
        r = http.get("/health")
    assert r.status_code == 200
    assert_fields(
        r.json(),
        {
            "status": "healthy",
            "timestamp": "",
            "version": "",
            "services": {},
            "uptime": 1,
            "request_count": 1,
        },
    )
    assert set(r.json()["services"]) >= {
        "database",
        "redis",
        "multi_agent_system",
        "knowledge_graph",
    }
    assert r.headers["x-request-id"].startswith("req_")


def test_submit_and_status_contract(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        r = http.post("/tasks/submit", json=GUIDE_SUBMIT)
        assert r.status_code == 200
        assert_fields(
            r.json(),
            {
                "task_id": "",
                "status": "accepted",
                "estimated_completion": "",
                "assigned_agents": [],
                "tracking_url": "",
            },
        )
        assert r.json()["assigned_agents"] == ["data_analysis_agent", "sentiment_analysis_agent"]
        status = http.get(r.json()["tracking_url"]).json()
        assert_fields(
            status,
            {
                "task_id": "",
                "status": "",
                "progress": 0.0,
                "created_at": "",
                "updated_at": "",
                "estimated_completion": "",
                "assigned_agents": [],
                "partial_results": {},
            },
        )
        done = wait_task(http, r.json()["task_id"])
    assert done["status"] == "completed" and "results" in done and "error" not in done


def test_orchestrate_runs_the_guides_workflow(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        r = http.post("/tasks/orchestrate", json=GUIDE_ORCHESTRATE)
        assert (
            r.status_code == 200
            and r.json()["assigned_agents"] == GUIDE_ORCHESTRATE["agents_required"]
        )
        done = wait_task(http, r.json()["task_id"])
    assert done["status"] == "completed" and "markdown" in done["results"]["stage_4"]


def test_orchestrate_dry_run_returns_the_plan_without_running(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed() as http:
        r = http.post("/tasks/orchestrate?dry_run=true", json=GUIDE_ORCHESTRATE)
        listed = http.get("/tasks").json()
    plan = r.json()
    assert r.status_code == 200 and plan["dry_run"] is True and plan["valid"] is True
    assert [s["name"] for s in plan["stages"]] == ["stage_1", "stage_2", "stage_3", "stage_4"]
    assert plan["compiled_shape"] == {"chain": ["stage_1", "stage_2", "stage_3", "stage_4"]}
    assert plan["estimated_duration_s"] > 0 and listed["tasks"] == []


def test_cyclic_workflow_answers_422_naming_the_cycle(authed: Callable[..., httpx.Client]) -> None:
    body = {
        "task_type": "x",
        "workflow": {
            "a": {"agent": "noop", "dependencies": ["b"]},
            "b": {"agent": "noop", "dependencies": ["a"]},
        },
    }
    with authed() as http:
        r = http.post("/tasks/orchestrate", json=body)
    err = r.json()["error"]
    assert r.status_code == 422 and err["code"] == "E002"
    assert "cycle" in err["message"]
    assert "a -> b -> a" in err["message"] or "b -> a -> b" in err["message"]
    assert err["details"]["issue"] == "dependency cycle"


def test_unknown_agent_and_task_type(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        agent = http.post(
            "/tasks/orchestrate", json={"task_type": "x", "workflow": {"a": {"agent": "ghost"}}}
        )
        kind = http.post("/tasks/submit", json={"task_type": "astrology"})
    assert (
        agent.status_code == 422 and agent.json()["error"]["details"]["provided_value"] == "ghost"
    )
    assert kind.status_code == 422 and kind.json()["error"]["code"] == "E003"


def test_validation_error_has_the_guides_details(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        r = http.post("/tasks/submit", json={"task_type": "", "description": "x"})
    err = r.json()["error"]
    assert r.status_code == 422 and err["type"] == "ValidationError" and err["code"] == "E001"
    assert err["details"]["field"] == "task_type" and err["details"]["provided_value"] == ""
    assert err["details"]["issue"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("malformed", 400, "E400"),
        ("not_object", 422, "E001"),
        ("wrong_type", 422, "E001"),
        ("content_type", 415, "E415"),
        ("too_large", 413, "E413"),
        ("too_deep", 400, "E400"),
        ("empty", 400, "E400"),
        ("unknown_route", 404, "E404"),
        ("wrong_method", 405, "E405"),
        ("unknown_task", 404, "E004"),
        ("bad_limit", 422, "E001"),
        ("bad_status", 422, "E001"),
        ("bad_cursor", 422, "E001"),
        ("bad_date", 422, "E001"),
        ("duplicate_stage", 422, "E002"),
    ],
)
def test_every_error_class_uses_the_envelope(
    authed: Callable[..., httpx.Client], kind: str, status: int, code: str
) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with authed() as http:
        r = {
            "malformed": lambda: http.post(
                "/tasks/submit",
                content=b'{"task_type": ',
                headers={"Content-Type": "application/json"},
            ),
            "not_object": lambda: http.post("/tasks/submit", json=[1, 2]),
            "wrong_type": lambda: http.post("/tasks/submit", json={"task_type": 5}),
            "content_type": lambda: http.post(
                "/tasks/submit", content=b"task_type=x", headers={"Content-Type": "text/plain"}
            ),
            "too_large": lambda: http.post(
                "/tasks/submit", json={"task_type": "noop", "description": "x" * 2_000_000}
            ),
            "too_deep": lambda: http.post(
                "/tasks/submit", json={"task_type": "noop", "requirements": {"d": deep}}
            ),
            "empty": lambda: http.post(
                "/tasks/submit", content=b"", headers={"Content-Type": "application/json"}
            ),
            "unknown_route": lambda: http.get("/nope"),
            "wrong_method": lambda: http.delete("/tasks/submit"),
            "unknown_task": lambda: http.get("/tasks/task_doesnotexist"),
            "bad_limit": lambda: http.get("/tasks?limit=0"),
            "bad_status": lambda: http.get("/tasks?status=sleeping"),
            "bad_cursor": lambda: http.get("/tasks?cursor=%%%"),
            "bad_date": lambda: http.get("/tasks?created_after=yesterday"),
            "duplicate_stage": lambda: http.post(
                "/tasks/orchestrate",
                content=b'{"task_type": "x", "workflow": {"a": {"agent": "noop"}, "a": {"agent": "noop"}}}',
                headers={"Content-Type": "application/json"},
            ),
        }[kind]()
    assert r.status_code == status, (kind, r.text[:300])
    err = r.json()["error"]
    assert set(err) == {
        "type",
        "message",
        "code",
        "details",
        "timestamp",
        "request_id",
        "documentation_url",
    }
    assert err["code"] == code and err["request_id"] == r.headers["x-request-id"]
    assert err["documentation_url"].endswith(f"/errors/{code}")
    with httpx.Client() as plain:
        doc = plain.get(err["documentation_url"])
    assert doc.status_code == 200 and code in doc.text


def test_request_id_is_taken_from_the_client(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        r = http.get("/tasks/task_missing", headers={"X-Request-ID": "my-trace-42"})
    assert (
        r.headers["x-request-id"] == "my-trace-42"
        and r.json()["error"]["request_id"] == "my-trace-42"
    )


def test_idempotency_key_returns_the_original_and_409_on_a_different_body(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed() as http:
        first = http.post(
            "/tasks/submit", json={"task_type": "noop"}, headers={"Idempotency-Key": "job-1"}
        )
        again = http.post(
            "/tasks/submit", json={"task_type": "noop"}, headers={"Idempotency-Key": "job-1"}
        )
        other = http.post(
            "/tasks/submit", json={"task_type": "report"}, headers={"Idempotency-Key": "job-1"}
        )
    # The guide's 200 both times; a repeat says so in a header.
    assert first.status_code == 200 and again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["task_id"] == first.json()["task_id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "E009"


def test_batch_submit_accepts_valid_items_and_reports_invalid_ones(
    authed: Callable[..., httpx.Client],
) -> None:
    tasks = [
        GUIDE_SUBMIT,
        {"task_type": "astrology"},
        {"task_type": "noop"},
        {"description": "no type"},
    ]
    with authed() as http:
        r = http.post(
            "/tasks/batch-submit", json={"tasks": tasks}, headers={"Idempotency-Key": "batch-1"}
        )
        again = http.post(
            "/tasks/batch-submit", json={"tasks": tasks}, headers={"Idempotency-Key": "batch-1"}
        )
        too_many = http.post("/tasks/batch-submit", json={"tasks": [{"task_type": "noop"}] * 101})
        listed = http.get("/tasks").json()
    body = r.json()
    assert r.status_code == 200 and (body["accepted"], body["rejected"]) == (2, 2)
    assert [x["status"] for x in body["results"]] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
    ]
    assert body["results"][1]["error"]["code"] == "E003"
    assert body["results"][3]["error"]["details"]["field"] == "task_type"
    assert [x.get("task_id") for x in again.json()["results"]] == [
        x.get("task_id") for x in body["results"]
    ]
    assert listed["count"] == 2
    assert too_many.status_code == 422


def test_batch_items_with_their_own_keys_are_accepted_once_however_they_are_grouped(
    authed: Callable[..., httpx.Client],
) -> None:
    items = [{"task_type": "noop", "idempotency_key": f"file-a:{n}"} for n in range(1, 7)]
    with authed() as http:
        first = http.post("/tasks/batch-submit", json={"tasks": items[:4]}).json()
        # The same items again, grouped differently (a resumed script), with one new item
        second = http.post("/tasks/batch-submit", json={"tasks": items[2:]}).json()
        duplicate = http.post(
            "/tasks/batch-submit", json={"tasks": [items[0], {**items[0]}, {"task_type": "noop"}]}
        ).json()
        bad = http.post(
            "/tasks/batch-submit",
            json={"tasks": [{"task_type": "noop", "idempotency_key": "has space"}]},
        ).json()
        changed = http.post(
            "/tasks/batch-submit",
            json={"tasks": [{**items[0], "priority": "high"}]},
        ).json()
        listed = http.get("/tasks", params={"limit": 200}).json()
    ids = {r["task_id"] for r in first["results"]}
    assert first["accepted"] == 4 and all(r["created"] for r in first["results"])
    assert [r["created"] for r in second["results"]] == [False, False, True, True]
    assert {r["task_id"] for r in second["results"][:2]} <= ids
    assert [r["status"] for r in duplicate["results"]] == ["accepted", "rejected", "accepted"]
    assert duplicate["results"][0]["task_id"] in ids and duplicate["results"][0]["created"] is False
    assert duplicate["results"][1]["error"]["details"]["issue"] == "duplicate key in one batch"
    assert bad["results"][0]["error"]["details"]["field"] == "tasks[0].idempotency_key"
    assert changed["rejected"] == 1 and changed["results"][0]["error"]["type"] == "Conflict"
    assert listed["count"] == 6 + 1  # six keyed items, one unkeyed


def test_cancel_and_retry_over_http(authed: Callable[..., httpx.Client]) -> None:
    slow = {
        "task_type": "t",
        "workflow": {
            "slow": {"agent": "test_noop", "params": {"sleep_s": 5, "steps": 50}},
            "next": {"agent": "noop", "dependencies": ["slow"]},
        },
    }
    with authed() as http:
        task_id = http.post("/tasks/orchestrate", json=slow).json()["task_id"]
        wait_until(  # cancelled mid-run: its first stage has started
            lambda: any(
                (s["name"], s["status"]) == ("slow", "running")
                for s in http.get(f"/tasks/{task_id}").json()["stages"]
            ),
            "stage slow running",
        )
        cancelled = http.post(f"/tasks/{task_id}/cancel")
        again = http.post(f"/tasks/{task_id}/cancel")
        retried = http.post(f"/tasks/{task_id}/retry", headers={"Idempotency-Key": "retry-1"})
        repeated = http.post(f"/tasks/{task_id}/retry", headers={"Idempotency-Key": "retry-1"})
        conflict = http.post(f"/tasks/{task_id}/retry")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert again.status_code == 200
    assert retried.status_code == 202 and set(retried.json()["retried_stages"]) == {"slow", "next"}
    assert repeated.status_code == 200 and repeated.json() == retried.json()
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "E009"


def test_tenancy_foreign_ids_look_absent_and_lists_are_scoped(
    authed: Callable[..., httpx.Client], make_client: Callable[..., Credentials]
) -> None:
    clients = [authed() for _ in range(3)]
    owned = [
        [c.post("/tasks/submit", json={"task_type": "noop"}).json()["task_id"] for _ in range(2)]
        for c in clients
    ]
    try:
        for i, http in enumerate(clients):
            listed = {t["task_id"] for t in http.get("/tasks").json()["tasks"]}
            assert listed == set(owned[i])
            absent = http.get("/tasks/task_0000000000000000")
            for j in range(3):
                if i == j:
                    continue
                for foreign in owned[j]:
                    for method, path in (
                        ("GET", f"/tasks/{foreign}"),
                        ("POST", f"/tasks/{foreign}/cancel"),
                        ("POST", f"/tasks/{foreign}/retry"),
                    ):
                        r = http.request(method, path)
                        assert r.status_code == 404 == absent.status_code
                        assert r.json()["error"]["code"] == absent.json()["error"]["code"]
                        assert foreign in r.json()["error"]["message"]
    finally:
        for c in clients:
            c.close()
