"""The generated contract holds for the app that runs: every route of `app.routes` is in the
/openapi.json it serves, and real answers are exactly their declared models (a model reads the
body and writes it back field for field: no field the model lacks, none of another type)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.routing import Route

from api.contract import refused
from api.openapi import model_for
from api.schemas import DryRunPlan
from tests.integration.api.conftest import Credentials, LiveApi, wait_task
from tests.integration.api.test_tasks_api import GUIDE_ORCHESTRATE, GUIDE_SUBMIT
from tests.integration.api.test_webhooks_api import GUIDE_BODY

pytestmark = pytest.mark.usefixtures("worker")


def test_every_route_of_the_app_is_in_the_document(live_api: LiveApi) -> None:
    with live_api.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    seen = 0
    for route in live_api.app.routes:
        assert isinstance(route, Route), route
        for method in (route.methods or set()) - {"HEAD"} - refused(route.endpoint):
            assert method.lower() in paths.get(route.path, {}), f"{method} {route.path}"
            seen += 1
    assert seen == sum(len(ops) for ops in paths.values())


def conforms(r: httpx.Response, path: str) -> dict[str, Any]:
    """The answer's body, checked against the model declared for its path, method and status."""
    model = model_for(path, r.request.method, r.status_code)
    assert isinstance(model, type) and issubclass(model, BaseModel), (path, r.status_code)
    body: dict[str, Any] = r.json()
    back = model.model_validate(body).model_dump(mode="json", exclude_unset=True)
    assert back == body, (path, r.status_code)
    return body


def one_of(r: httpx.Response, path: str, model: type[BaseModel]) -> None:
    declared = model_for(path, r.request.method, r.status_code)
    assert isinstance(declared, tuple) and model in declared
    body = r.json()
    assert model.model_validate(body).model_dump(mode="json", exclude_unset=True) == body


def test_real_answers_are_their_declared_models(
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    authed: Callable[..., httpx.Client],
) -> None:
    creds = make_client(scopes="read write")
    with live_api.client() as anon:
        conforms(anon.get("/health"), "/health")
        conforms(anon.get("/health/live"), "/health/live")
        got = anon.post("/auth/token", data=creds.form(grant_type="client_credentials"))
        token = conforms(got, "/auth/token")
        conforms(anon.post("/auth/token", data={"grant_type": "password"}), "/auth/token")
        revoked = anon.post("/auth/revoke", data=creds.form(token=token["refresh_token"]))
        conforms(revoked, "/auth/revoke")
        conforms(anon.get("/tasks"), "/tasks")  # 401 in the envelope
    with authed(creds=creds) as http:
        accepted = conforms(http.post("/tasks/submit", json=GUIDE_SUBMIT), "/tasks/submit")
        task_id = accepted["task_id"]
        conforms(http.get(f"/tasks/{task_id}"), "/tasks/{task_id}")
        conforms(http.get("/tasks"), "/tasks")
        assert wait_task(http, task_id)["status"] == "completed"
        done = conforms(http.get(f"/tasks/{task_id}"), "/tasks/{task_id}")
        assert "results" in done  # the optional field, present once completed
        conforms(http.post(f"/tasks/{task_id}/cancel"), "/tasks/{task_id}/cancel")  # 409
        conforms(http.get("/tasks/task_nope"), "/tasks/{task_id}")  # 404
        plan = http.post("/tasks/orchestrate?dry_run=true", json=GUIDE_ORCHESTRATE)
        one_of(plan, "/tasks/orchestrate", DryRunPlan)
        batch = http.post("/tasks/batch-submit", json={"tasks": [GUIDE_SUBMIT, {"task_type": ""}]})
        conforms(batch, "/tasks/batch-submit")
        conforms(http.get("/task-types"), "/task-types")
        conforms(http.get("/quotas"), "/quotas")
        conforms(http.get("/metrics"), "/metrics")
        hook = conforms(http.post("/webhooks/register", json=GUIDE_BODY), "/webhooks/register")
        conforms(http.get("/webhooks"), "/webhooks")
        conforms(http.get(f"/webhooks/{hook['webhook_id']}"), "/webhooks/{webhook_id}")
        deliveries = http.get(f"/webhooks/{hook['webhook_id']}/deliveries")
        conforms(deliveries, "/webhooks/{webhook_id}/deliveries")
        conforms(http.post("/tasks/submit", json={"task_type": 5}), "/tasks/submit")  # 422
