"""A knowledge_graph_agent stage with a bad mapping, or a stage with a bad graph_query, is
refused when submitted: 422 in the guide's envelope, naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ROOT

EXAMPLE = json.loads((ROOT / "examples" / "complex_analysis_graph.json").read_text())


def example(**params: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(EXAMPLE))
    body["workflow"]["stage_5"]["params"].update(params)
    return body


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (example(entities=[{"from": "stage_2.records", "node_id": "x_{id}", "type": "x"}]),
         "E045", "workflow.stage_5.params.entities[0].from"),
        (example(relationships=[{"from": "stage_3.recommendations", "type": "bad type",
                                 "source": "a", "target": "b"}]),
         "E045", "workflow.stage_5.params.relationships[0].type"),
        (example(graph_query={"query": "MATCH (n) RETURN n", "parameters": "x"}),
         "E046", "workflow.stage_5.params.graph_query.parameters"),
        # The query itself is prepared at submit: a write or a syntax error is refused then.
        (example(graph_query={"query": "MATCH (n) DETACH DELETE n"}),
         "E046", "workflow.stage_5.params.graph_query.query"),
        (example(graph_query={"query": "MATCH (n RETURN n"}),
         "E046", "workflow.stage_5.params.graph_query.query"),
        (example(graph_query={"query": "MATCH (n) WHERE n.name = $name RETURN n"}),
         "E046", "workflow.stage_5.params.graph_query.query"),
    ],
)  # fmt: skip
def test_a_bad_graph_stage_is_refused_at_submit(
    authed: Callable[..., httpx.Client], body: dict[str, Any], code: str, field: str
) -> None:
    with authed() as http:
        r = http.post("/tasks/orchestrate", json=body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == code and error["details"]["field"] == field, error
        assert error["type"] == "ValidationError"
    with authed("read write admin") as http:
        r = http.post("/task-types", json={"name": "kg_bad", "workflow": body["workflow"]})
        assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text


def test_the_example_is_accepted(authed: Callable[..., httpx.Client]) -> None:
    with authed() as http:
        r = http.post("/tasks/orchestrate", json=EXAMPLE)
        assert r.status_code == 200, r.text
        assert "knowledge_graph_agent" in r.json()["assigned_agents"]
