"""The node and relationship checks every graph writer applies (aia_engine/graph/model.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aia_engine.graph.model import (
    MAX_PROPERTIES_BYTES,
    ItemError,
    NodeIn,
    RelationshipIn,
    derived_relationship_id,
    labels_for,
    node_from,
    relationship_from,
)


def test_a_valid_node_is_read_as_given() -> None:
    item = {"node_id": "customer_001", "type": "customer", "properties": {"name": "Acme"}}
    assert node_from(item) == NodeIn("customer_001", "customer", {"name": "Acme"})
    assert node_from({"node_id": "x", "type": "t"}).properties == {}
    assert node_from({"node_id": "x", "type": "t", "properties": None}).properties == {}


def test_labels_are_entity_the_type_and_its_pascal_case() -> None:
    assert labels_for("customer") == {"Entity", "customer", "Customer"}
    assert labels_for("business_unit") == {"Entity", "business_unit", "BusinessUnit"}
    assert labels_for("Product") == {"Entity", "Product"}
    assert labels_for("_") == {"Entity", "_"}


BAD_NODES: list[tuple[Any, str, str]] = [
    ("not an object", "entity", "not an object"),
    ({"node_id": "", "type": "t"}, "entity.node_id", "not an id"),
    ({"node_id": 7, "type": "t"}, "entity.node_id", "not an id"),
    ({"type": "t"}, "entity.node_id", "not an id"),
    ({"node_id": "x" * 201, "type": "t"}, "entity.node_id", "too long"),
    ({"node_id": "a\nb", "type": "t"}, "entity.node_id", "invalid character"),
    ({"node_id": "a\ud800", "type": "t"}, "entity.node_id", "invalid character"),
    ({"node_id": "x", "type": "9lives"}, "entity.type", "not a type name"),
    ({"node_id": "x", "type": "has space"}, "entity.type", "not a type name"),
    ({"node_id": "x", "type": "t" * 65}, "entity.type", "not a type name"),
    ({"node_id": "x"}, "entity.type", "not a type name"),
    ({"node_id": "x", "type": "t", "properties": []}, "entity.properties", "not an object"),
    ({"node_id": "x", "type": "t", "properties": {"type": 1}}, "entity.properties.type",
     "reserved name"),
    ({"node_id": "x", "type": "t", "properties": {"node_id": 1}}, "entity.properties.node_id",
     "reserved name"),
    ({"node_id": "x", "type": "t", "properties": {"__labels__": 1}},
     "entity.properties.__labels__", "reserved name"),
    ({"node_id": "x", "type": "t", "properties": {"": 1}}, "entity.properties", "bad key"),
    ({"node_id": "x", "type": "t", "properties": {"v": math.nan}}, "entity.properties",
     "not JSON"),
    ({"node_id": "x", "type": "t", "properties": {"v": [math.inf]}}, "entity.properties",
     "not JSON"),
    ({"node_id": "x", "type": "t", "properties": {"v": "a\x00b"}}, "entity.properties",
     "invalid character"),
    ({"node_id": "x", "type": "t", "properties": {"v": "x" * MAX_PROPERTIES_BYTES}},
     "entity.properties", "too large"),
    ({"node_id": "x", "type": "t", "label": "y"}, "entity.label", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "field", "issue"), BAD_NODES)
def test_a_bad_node_names_its_field_and_issue(item: Any, field: str, issue: str) -> None:
    with pytest.raises(ItemError) as caught:
        node_from(item)
    assert (caught.value.field, caught.value.issue) == (field, issue)
    assert str(caught.value)


def test_where_prefixes_every_field() -> None:
    with pytest.raises(ItemError) as caught:
        node_from({"node_id": "x", "type": "t", "properties": {"type": 1}}, "entities[3]")
    assert caught.value.field == "entities[3].properties.type"


def test_a_property_named_like_a_relationship_field_is_fine_on_a_node() -> None:
    props = {"source": "crm", "target": 3, "relationship_id": "r"}
    assert node_from({"node_id": "x", "type": "t", "properties": props}).properties == props


def test_a_relationship_without_id_gets_one_derived_from_its_triple() -> None:
    rel = relationship_from({"type": "PURCHASED", "source": "c1", "target": "p1"})
    assert rel == RelationshipIn(derived_relationship_id("c1", "PURCHASED", "p1"), "PURCHASED",
                                 "c1", "p1", {})  # fmt: skip
    again = relationship_from({"type": "PURCHASED", "source": "c1", "target": "p1"})
    assert again.relationship_id == rel.relationship_id
    assert rel.relationship_id.startswith("rel_")
    others = {
        derived_relationship_id("p1", "PURCHASED", "c1"),
        derived_relationship_id("c1", "VIEWED", "p1"),
        # no separator ambiguity: ("a_b", "c") and ("a", "b_c") differ
        derived_relationship_id("c1_x", "T", "p1"),
        derived_relationship_id("c1", "T", "x_p1"),
    }
    assert rel.relationship_id not in others and len(others) == 4


def test_a_given_relationship_id_is_kept() -> None:
    item = {"relationship_id": "r1", "type": "T", "source": "a", "target": "a",
            "properties": {"amount": 3.5}}  # fmt: skip
    assert relationship_from(item) == RelationshipIn("r1", "T", "a", "a", {"amount": 3.5})


BAD_RELATIONSHIPS: list[tuple[Any, str, str]] = [
    ([], "relationship", "not an object"),
    ({"type": "T", "source": "a"}, "relationship.target", "not an id"),
    ({"type": "T", "target": "a"}, "relationship.source", "not an id"),
    ({"type": "T-1", "source": "a", "target": "b"}, "relationship.type", "not a type name"),
    ({"relationship_id": "", "type": "T", "source": "a", "target": "b"},
     "relationship.relationship_id", "not an id"),
    ({"type": "T", "source": "a", "target": "b", "properties": {"source": 1}},
     "relationship.properties.source", "reserved name"),
    ({"type": "T", "source": "a", "target": "b", "properties": {"__x": 1}},
     "relationship.properties.__x", "reserved name"),
    ({"type": "T", "source": "a", "target": "b", "from": "a"}, "relationship.from",
     "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "field", "issue"), BAD_RELATIONSHIPS)
def test_a_bad_relationship_names_its_field_and_issue(item: Any, field: str, issue: str) -> None:
    with pytest.raises(ItemError) as caught:
        relationship_from(item)
    assert (caught.value.field, caught.value.issue) == (field, issue)


def test_a_nul_character_is_refused_but_the_text_backslash_u0000_is_not() -> None:
    with pytest.raises(ItemError, match="NUL"):
        node_from({"node_id": "n", "type": "t", "properties": {"a": ["x\x00"]}})
    with pytest.raises(ItemError, match="NUL"):
        node_from({"node_id": "n", "type": "t", "properties": {"k\x00": 1}})
    assert node_from({"node_id": "n", "type": "t", "properties": {"a": "\\u0000"}}).properties == {
        "a": "\\u0000"
    }
