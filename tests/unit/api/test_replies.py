"""api/replies.py: an answer goes through the model its route declares. Under
AIA_CONTRACT_CHECK=raise (the tests) a drift raises; under `log` (production) it is logged and
the answer still goes out, as it is: an accepted submission is never turned into a 500."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import schemas
from api.contract import Reply, operation
from api.replies import ContractDrift, plain, reply
from api.routes import auth, tasks

ACCEPTED = {
    "task_id": "task_1",
    "status": "accepted",
    "estimated_completion": None,
    "assigned_agents": ["data_analyst"],
    "tracking_url": "/tasks/task_1",
}


def request(endpoint: Any, method: str = "POST", check: str = "raise") -> Request:
    settings = SimpleNamespace(contract_check=check)
    app = SimpleNamespace(state=SimpleNamespace(resources=SimpleNamespace(settings=settings)))
    scope = {"type": "http", "method": method, "path": "/x", "headers": [], "app": app}
    scope["endpoint"] = endpoint
    return Request(scope)


def test_a_reply_is_the_dict_byte_for_byte_when_it_fits() -> None:
    answer = reply(request(tasks.submit), ACCEPTED)
    assert answer.status_code == 200
    assert answer.media_type == "application/json"
    assert answer.body == plain(ACCEPTED)


@pytest.mark.parametrize(
    ("drift", "found"),
    [
        ({**ACCEPTED, "queue": "high"}, r"fields not in the model \['queue'\]"),
        (
            {k: v for k, v in ACCEPTED.items() if k != "tracking_url"},
            "tracking_url: Field required",
        ),
        ({**ACCEPTED, "assigned_agents": "data_analyst"}, "assigned_agents: Input should be"),
        ({**ACCEPTED, "status": "queued"}, "status: Input should be 'accepted'"),
    ],
    ids=["unknown field", "missing required field", "wrong type", "value outside the model"],
)
def test_a_drift_raises_under_the_test_setting(drift: dict[str, Any], found: str) -> None:
    with pytest.raises(ContractDrift, match=found):
        reply(request(tasks.submit), drift)


class Numbers(BaseModel):
    count: int
    share: float
    label: str
    note: str | None = None


@operation("Numbers", tag="t", responses={200: Numbers, 201: Reply(description="no body")})
async def numbers(request: Request) -> Response:
    return reply(request, {"count": 1, "share": 0.5, "label": "x"})


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ({"count": "1", "share": 0.5, "label": "x"}, "count: str given, int sent"),
        ({"count": 1, "share": 0, "label": "x"}, "share: int given, float sent"),
        ({"count": True, "share": 0.5, "label": "x"}, "count: bool given, int sent"),
    ],
    ids=["string for int", "int for float", "bool for int"],
)
def test_a_value_the_model_would_coerce_raises_under_the_test_setting(
    given: dict[str, Any], found: str
) -> None:
    """What validation lets through but changes on the wire ("1" -> 1, 0 -> 0.0)."""
    with pytest.raises(ContractDrift, match=found):
        reply(request(numbers, "GET"), given)


def test_unset_fields_stay_out_and_nulls_given_stay_in() -> None:
    without = {"count": 1, "share": 0.5, "label": "x"}
    assert json.loads(reply(request(numbers, "GET"), without).body) == without
    with_null = {**without, "note": None}
    assert json.loads(reply(request(numbers, "GET"), with_null).body) == with_null


def test_an_undeclared_answer_raises_under_the_test_setting() -> None:
    with pytest.raises(ContractDrift, match="declares no 404 answer"):
        reply(request(numbers, "GET"), {}, status=404)
    with pytest.raises(ContractDrift, match="declares no JSON body for 201"):
        reply(request(numbers, "GET"), {}, status=201)
    with pytest.raises(ContractDrift, match="not TaskAccepted"):
        reply(request(numbers, "GET"), ACCEPTED, model=schemas.TaskAccepted)


@pytest.mark.parametrize(
    "drift",
    [
        {k: v for k, v in ACCEPTED.items() if k != "tracking_url"},
        {**ACCEPTED, "assigned_agents": "data_analyst", "queue": "high"},
    ],
    ids=["missing required field", "wrong type and unknown field"],
)
def test_in_production_an_accepted_submission_is_answered_as_it_is(
    drift: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The task is committed when the reply is built: the client gets its task id, the drift
    goes to the log (without the values)."""
    with caplog.at_level(logging.ERROR, logger="api.replies"):
        answer = reply(request(tasks.submit, check="log"), drift)
    assert answer.status_code == 200
    assert answer.body == plain(drift)
    assert "POST /x 200 is not its declared model" in caplog.text
    assert "data_analyst" not in caplog.text


def test_in_production_an_unknown_field_is_left_off_the_wire_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.replies"):
        answer = reply(request(tasks.submit, check="log"), {**ACCEPTED, "queue": "high"})
    assert answer.body == plain(ACCEPTED)
    assert "drops fields its model does not declare: queue" in caplog.text
    assert "high" not in caplog.text


def test_a_union_is_picked_by_the_handler_or_by_validation() -> None:
    plan = {
        "valid": True,
        "dry_run": True,
        "task_type": "t",
        "assigned_agents": [],
        "stages": [],
        "execution_order": [],
        "series_parallel": True,
        "compiled_shape": None,
        "estimated_duration_s": 1.5,
        "critical_path_s": 1.5,
    }
    at = request(tasks.orchestrate)
    assert reply(at, plan, model=schemas.DryRunPlan).body == plain(plan)
    assert reply(at, plan).body == plain(plan)
    assert reply(at, ACCEPTED).body == plain(ACCEPTED)
    with pytest.raises(ContractDrift):
        reply(at, plan, model=schemas.TaskAccepted)


def test_a_refused_method_answers_what_the_operation_declares_for_it() -> None:
    refusal = {"error": "invalid_request", "error_description": "use POST"}
    assert reply(request(auth.token, "GET"), refusal, status=405).body == plain(refusal)


def test_the_route_is_found_from_the_running_app() -> None:
    """Starlette puts the matched endpoint in the scope; HEAD answers as GET."""
    app = Starlette(routes=[Route("/n", numbers, methods=["GET"])])
    app.state.resources = SimpleNamespace(settings=SimpleNamespace(contract_check="raise"))

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/n"), await client.head("/n")

    got, head = anyio.run(ask)
    assert got.json() == {"count": 1, "share": 0.5, "label": "x"}
    assert got.headers["content-type"] == "application/json"
    assert head.status_code == 200
