"""The knowledge_graph_agent's mapping: refused at submit naming the field, applied item by
item when the stage runs (a wrong item is listed, a missing input fails the stage)."""

from __future__ import annotations

from typing import Any

import pytest

from aia_engine.agents.params import check_stage_params
from aia_engine.errors import (
    GraphWriteRefused,
    InvalidGraphMapping,
    InvalidGraphQueryParam,
    InvalidRequest,
)
from aia_engine.graph.mapping import build_items, parse_mapping
from aia_engine.graph.model import derived_relationship_id
from workflows.spec import parse_workflow

CUSTOMERS = {
    "records": [
        {"id": 1, "name": "Acme", "industry": "retail", "segment": "smb"},
        {"id": 2, "name": "Globex", "industry": "energy", "segment": "enterprise"},
    ],
    "segments": {"smb": {"share_pct": 18.7}, "enterprise": {"share_pct": 42.5}},
}


def stage(params: dict[str, Any], deps: tuple[str, ...] = ("load",)) -> dict[str, Any]:
    return {
        "load": {"agent": "noop"},
        "graph": {"agent": "noop"},
        "record": {"agent": "knowledge_graph_agent", "dependencies": list(deps), "params": params},
    }


def refused(params: dict[str, Any], deps: tuple[str, ...] = ("load",)) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_stage_params(parse_workflow(stage(params, deps)))
    return caught.value


ENTITY = {"from": "load.records", "node_id": "customer_{id}", "type": "customer"}


@pytest.mark.parametrize(
    ("params", "field", "issue"),
    [
        ({}, "workflow.record.params.entities", "no mapping"),
        ({"entities": {}}, "workflow.record.params.entities", "not a list"),
        ({"entities": [{**ENTITY, "from": "nowhere.records"}]},
         "workflow.record.params.entities[0].from", "not a dependency"),
        ({"entities": [{**ENTITY, "from": "load..x"}]},
         "workflow.record.params.entities[0].from", "bad path"),
        ({"entities": [{**ENTITY, "node_id": "customer_{id"}]},
         "workflow.record.params.entities[0].node_id", "bad template"),
        ({"entities": [{**ENTITY, "node_id": "c_{ }"}]},
         "workflow.record.params.entities[0].node_id", "bad template"),
        ({"entities": [{**ENTITY, "type": "not a type"}]},
         "workflow.record.params.entities[0].type", "not a type name"),
        ({"entities": [{**ENTITY, "properties": ["node_id"]}]},
         "workflow.record.params.entities[0].properties", "reserved name"),
        ({"entities": [{**ENTITY, "properties": 3}]},
         "workflow.record.params.entities[0].properties", "wrong type"),
        ({"entities": [{**ENTITY, "merge": "yes"}]},
         "workflow.record.params.entities[0].merge", "not a boolean"),
        ({"entities": [{**ENTITY, "colour": "red"}]},
         "workflow.record.params.entities[0].colour", "unknown field"),
        ({"relationships": [{"from": "load.records", "type": "PURCHASED", "source": "c_{id}"}]},
         "workflow.record.params.relationships[0].target", "missing"),
        ({"entities": [ENTITY], "mode": "fast"}, "workflow.record.params.mode", "unknown field"),
        ({"entities": [ENTITY] * 21}, "workflow.record.params.entities", "too many mappings"),
    ],
)  # fmt: skip
def test_a_bad_mapping_is_refused_at_submit_naming_the_field(
    params: dict[str, Any], field: str, issue: str
) -> None:
    error = refused(params)
    assert isinstance(error, InvalidGraphMapping) and error.code == "E045" and error.status == 422
    assert (error.details["field"], error.details["issue"]) == (field, issue), error.message


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("MATCH (n) RETURN n", "workflow.record.params.graph_query"),
        ({"query": ""}, "workflow.record.params.graph_query.query"),
        ({"query": "x" * 10_001}, "workflow.record.params.graph_query.query"),
        ({"query": "MATCH (n) RETURN n", "parameters": []},
         "workflow.record.params.graph_query.parameters"),
        ({"query": "MATCH (n) RETURN n", "params": {}},
         "workflow.record.params.graph_query.params"),
    ],
)  # fmt: skip
def test_a_bad_graph_query_param_is_refused_at_submit(query: Any, field: str) -> None:
    error = refused({"entities": [ENTITY], "graph_query": query})
    assert isinstance(error, InvalidGraphQueryParam) and error.code == "E046"
    assert error.details["field"] == field


def test_graph_query_may_not_shadow_a_dependency_named_graph() -> None:
    error = refused({"entities": [ENTITY], "graph_query": {"query": "MATCH (n) RETURN n"}},
                    deps=("load", "graph"))  # fmt: skip
    assert isinstance(error, InvalidGraphQueryParam)
    assert error.details["issue"] == "input name taken"


def test_a_good_mapping_passes_and_graph_rows_may_be_mapped() -> None:
    check_stage_params(parse_workflow(stage({"entities": [ENTITY]})))
    params = {
        "graph_query": {"query": "MATCH (c:Customer) RETURN c.name"},
        "entities": [{"from": "graph.records", "node_id": "seen_{c.name}", "type": "seen"}],
    }
    check_stage_params(parse_workflow(stage(params)))


def build(params: dict[str, Any], inputs: dict[str, Any] | None = None) -> Any:
    mapping = parse_mapping(params, "params", ("load",))
    return build_items(mapping, inputs or {"load": CUSTOMERS}, {"records": [{"id": 9}]})


def test_list_items_make_nodes_from_templates_and_properties() -> None:
    built = build({"entities": [{**ENTITY, "properties": ["name", "industry"]}]})
    assert [(n.node_id, n.type, n.properties, merge) for n, merge in built.nodes] == [
        ("customer_1", "customer", {"name": "Acme", "industry": "retail"}, False),
        ("customer_2", "customer", {"name": "Globex", "industry": "energy"}, False),
    ]
    assert built.errors == []


def test_object_entries_give_their_key_and_single_takes_the_object() -> None:
    built = build(
        {
            "entities": [
                {"from": "load.segments", "node_id": "segment_{_key}", "type": "segment",
                 "properties": {"name": "_key", "share": "share_pct"}, "merge": True},
                {"from": "load", "single": True, "node_id": "{{all}}", "type": "market"},
                {"from": "requirements.records", "node_id": "r{id}", "type": "raw", "properties": "*"},
            ]
        }
    )  # fmt: skip
    assert [(n.node_id, n.properties, merge) for n, merge in built.nodes] == [
        ("segment_smb", {"name": "smb", "share": 18.7}, True),
        ("segment_enterprise", {"name": "enterprise", "share": 42.5}, True),
        ("{all}", {}, False),
        ("r9", {"id": 9}, False),
    ]


def test_relationships_get_a_derived_id_unless_one_is_templated() -> None:
    built = build(
        {
            "relationships": [
                {"from": "load.records", "type": "IN_SEGMENT", "source": "customer_{id}",
                 "target": "segment_{segment}", "properties": ["industry"]},
                {"from": "load.records", "type": "KNOWS", "source": "customer_{id}",
                 "target": "customer_1", "relationship_id": "knows_{id}"},
            ]
        }
    )  # fmt: skip
    first = built.relationships[0]
    assert first.relationship_id == derived_relationship_id(
        "customer_1", "IN_SEGMENT", "segment_smb"
    )
    assert first.properties == {"industry": "retail"}
    assert [r.relationship_id for r in built.relationships[2:]] == ["knows_1", "knows_2"]


def test_a_wrong_item_is_listed_and_the_others_are_kept() -> None:
    inputs = {"load": {"records": [{"id": 1}, {"name": "no id"}, "text", {"id": True}]}}
    built = build({"entities": [ENTITY]}, inputs)
    assert [n.node_id for n, _ in built.nodes] == ["customer_1"]
    assert sorted((e["index"], e["issue"]) for e in built.errors) == [
        (1, "missing field"),
        (2, "not an object"),
        (3, "missing field"),
    ]
    assert all(e["mapping"] == "entities[0]" for e in built.errors)


def test_a_property_that_is_not_json_is_an_item_error() -> None:
    built = build({"entities": [{**ENTITY, "properties": ["v"]}]},
                  {"load": {"records": [{"id": 1, "v": float("nan")}, {"id": 2, "v": 1}]}})  # fmt: skip
    assert [n.node_id for n, _ in built.nodes] == ["customer_2"]
    assert built.errors[0]["field"] == "properties" and built.errors[0]["index"] == 0


@pytest.mark.parametrize(
    ("from_", "inputs"),
    [
        ("load.missing", {"load": CUSTOMERS}),
        ("load.records", {"load": {"status": "failed", "error": {"code": "E010"}}}),
        ("load.records", {"load": {"records": 7}}),
    ],
)
def test_an_input_that_is_not_there_fails_the_stage(from_: str, inputs: dict[str, Any]) -> None:
    with pytest.raises(GraphWriteRefused) as caught:
        build({"entities": [{**ENTITY, "from": from_}]}, inputs)
    assert caught.value.code == "E048"
    assert caught.value.details["field"] == "entities[0].from"
