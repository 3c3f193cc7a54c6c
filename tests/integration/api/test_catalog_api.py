"""Operator task types (admin API) and named datasets, through a live server and a real worker:
what a submission may name is checked when it is submitted, and runs with the named data."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from aia_engine.datasets.store import add_dataset
from tests.integration.api.conftest import Credentials, wait_task
from tests.integration.conftest import Services
from tests.integration.test_cli_catalog import cli, write

pytestmark = pytest.mark.usefixtures("worker")

REPORT_FLOW = {
    "analysis": {"agent": "data_analysis_agent", "task": "Describe", "dependencies": []},
    "report": {"agent": "reporting_agent", "task": "Report", "dependencies": ["analysis"]},
}


def test_task_types_need_admin_to_change_and_are_validated_like_workflows(
    authed: Callable[..., httpx.Client],
) -> None:
    body = {"name": "quarterly_report", "description": "numbers", "workflow": REPORT_FLOW}
    with authed("read write") as user, authed("read write admin") as admin:
        refused = user.post("/task-types", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "E403"
        assert user.delete("/task-types/data_analysis").status_code == 403

        bad = admin.post(
            "/task-types",
            json={**body, "workflow": {"a": {"agent": "noop", "dependencies": ["zz"]}}},
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "E002"
        unknown = admin.post(
            "/task-types", json={**body, "workflow": {"a": {"agent": "oracle_agent"}}}
        )
        assert unknown.status_code == 422 and "oracle_agent" in unknown.json()["error"]["message"]
        assert admin.post("/task-types", json={**body, "name": ""}).status_code == 422
        shadow = admin.post("/task-types", json={**body, "name": "data_analysis"})
        assert shadow.status_code == 409 and "built-in" in shadow.json()["error"]["message"]

        made = admin.post("/task-types", json=body)
        assert made.status_code == 201, made.text
        assert made.json()["name"] == "quarterly_report" and made.json()["builtin"] is False
        assert made.json()["assigned_agents"] == ["data_analysis_agent", "reporting_agent"]
        dup = admin.post("/task-types", json=body)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "E009"

        listed = user.get("/task-types")  # read scope lists them
        assert listed.status_code == 200
        by_name = {t["name"]: t for t in listed.json()["task_types"]}
        assert by_name["quarterly_report"]["builtin"] is False
        assert by_name["data_analysis"]["builtin"] is True
        assert user.get("/task-types/quarterly_report").json()["description"] == "numbers"
        assert user.get("/task-types/nothing_here").status_code == 404

        assert admin.delete("/task-types/nothing_here").status_code == 404
        builtin = admin.delete("/task-types/data_analysis")
        assert builtin.status_code == 409 and "built-in" in builtin.json()["error"]["message"]
        assert admin.delete("/task-types/quarterly_report").status_code == 204
        assert user.get("/task-types/quarterly_report").status_code == 404


def test_an_operator_task_type_runs_to_completion(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed("read write admin") as admin, authed() as user:
        created = admin.post(
            "/task-types",
            json={"name": "load_test", "description": "one noop stage", "workflow": {
                "noop": {"agent": "noop", "task": "Do nothing", "dependencies": []}
            }},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        # The guide's locustfile body, unchanged
        r = user.post(
            "/tasks/submit",
            json={"task_type": "load_test", "description": "Load testing task", "priority": "low"},
        )
        assert r.status_code == 200 and r.json()["assigned_agents"] == ["noop"]
        done = wait_task(user, r.json()["task_id"])
        assert done["status"] == "completed", done
        assert admin.delete("/task-types/load_test").status_code == 204
        # A task keeps the workflow it was accepted with; the type is gone for new ones.
        assert user.get(f"/tasks/{r.json()['task_id']}").json()["status"] == "completed"


def test_an_unknown_task_type_is_refused_listing_the_known_ones(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed("read write admin") as admin, authed() as user:
        made = admin.post("/task-types", json={"name": "nightly_digest", "workflow": REPORT_FLOW})
        assert made.status_code == 201
        for task_type in ("load_test", "analysis", "test"):  # the guide's examples
            r = user.post("/tasks/submit", json={"task_type": task_type})
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["code"] == "E003" and error["details"]["provided_value"] == task_type
            assert "data_analysis" in error["message"] and "nightly_digest" in error["message"]
            assert {"data_analysis", "nightly_digest"} <= set(error["details"]["known"])
        assert admin.delete("/task-types/nightly_digest").status_code == 204


def test_data_naming_no_dataset_is_refused_at_submission(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed() as user:
        for requirements, field in (
            ({"data_source": "test_data_nowhere"}, "requirements.data_source"),
            ({"dataset_id": "dataset_7"}, "requirements.dataset_id"),  # the guide's batch body
            ({"data_source": "sample:no_such_sample"}, "requirements.data_source"),
            ({"data_source": 7}, "requirements.data_source"),
            ({"dataset_id": "trailing_newline\n"}, "requirements.dataset_id"),
        ):
            r = user.post(
                "/tasks/submit", json={"task_type": "data_analysis", "requirements": requirements}
            )
            assert r.status_code == 422, (requirements, r.text)
            error = r.json()["error"]
            assert error["details"]["field"] == field, error
            value = requirements.popitem()[1]
            assert error["details"]["provided_value"] == value
            assert (repr(value) if isinstance(value, str) else str(value)) in error["message"]
        in_stage = user.post(
            "/tasks/orchestrate",
            json={
                "task_type": "custom",
                "workflow": {
                    "a": {"agent": "data_analysis_agent", "params": {"data_source": "nowhere"}}
                },
            },
        )
        assert in_stage.status_code == 422
        assert in_stage.json()["error"]["details"]["field"] == "workflow.a.params.data_source"
        batch = user.post(
            "/tasks/batch-submit",
            json={"tasks": [{"task_type": "data_analysis", "requirements": {"dataset_id": "d1"}}]},
        )
        assert batch.json()["results"][0]["status"] == "rejected"


def test_a_dataset_added_with_the_cli_feeds_the_task_on_a_real_worker(
    services: Services, authed: Callable[..., httpx.Client]
) -> None:
    rows = [{"store": s, "sales": v, "text": t} for s, v, t in (
        ("north", 120, "Great week, customers loved it"),
        ("south", 80, "Terrible delays, angry customers"),
        ("north", 100, "Fine"),
    )]  # fmt: skip
    path = write(services, "store_sales.json", json.dumps(rows))
    assert cli(services, "datasets", "add", "store_sales", str(path)).returncode == 0
    with authed() as user:
        for key in ("data_source", "dataset_id"):
            r = user.post(
                "/tasks/submit",
                json={"task_type": "data_analysis", "requirements": {key: "store_sales"}},
            )
            assert r.status_code == 200, r.text
            done = wait_task(user, r.json()["task_id"])
            assert done["status"] == "completed", done
            analysis = done["results"]["analysis"]
            assert analysis["source"] == "dataset:store_sales"
            assert analysis["record_count"] == 3
            assert done["results"]["sentiment"]["total_texts"] == 3


def test_a_clients_own_dataset_is_seen_by_that_client_only(
    services: Services,
    authed: Callable[..., httpx.Client],
    make_client: Callable[..., Credentials],
) -> None:
    owner, other = make_client(), make_client()
    add_dataset(
        services.sessions,
        "private_rows",
        [{"v": 1}, {"v": 2}],
        client_id=owner.client_id,
        settings=services.settings,
    )
    body = {"task_type": "report", "requirements": {"data_source": "private_rows"}}
    with authed(creds=owner) as mine, authed(creds=other) as theirs:
        refused = theirs.post("/tasks/submit", json=body)
        assert refused.status_code == 422 and "private_rows" in refused.json()["error"]["message"]
        accepted = mine.post("/tasks/submit", json=body)
        assert accepted.status_code == 200
        done = wait_task(mine, accepted.json()["task_id"])
    assert done["status"] == "completed" and done["results"]["analysis"]["record_count"] == 2


def test_market_research_uses_sample_data_only_when_named(
    authed: Callable[..., httpx.Client],
) -> None:
    stage = {"m": {"agent": "market_research_agent", "task": "size the market"}}
    with authed() as user:
        bare = user.post("/tasks/orchestrate", json={"task_type": "custom", "workflow": stage})
        assert bare.status_code == 200
        failed = wait_task(user, bare.json()["task_id"])
        assert failed["status"] == "failed", failed
        assert "no records" in json.dumps(failed["error"])
        assert "sample:market_segments" in json.dumps(failed["error"])  # says how to ask
        for name in ("sample:market_segments", "market_segments"):
            named = user.post(
                "/tasks/orchestrate",
                json={
                    "task_type": "custom",
                    "workflow": stage,
                    "requirements": {"data_source": name},
                },
            )
            done = wait_task(user, named.json()["task_id"])
            assert done["status"] == "completed", done
            assert done["results"]["m"]["source"] == "dataset:market_segments (sample)"
