"""What is embedded for an entity (aia_engine.search.texts) and its hash."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from aia_engine.search.texts import MAX_VALUE_CHARS, entity_text, text_hash
from aia_engine.settings import Settings

DEFAULT = Settings()
CUSTOMER = {
    "industry": "Technology",
    "name": "Acme Systems 5",
    "region": "AMER",
    "relationship_strength": 0.03,
    "value_score": 63.5,
}


def test_default_type_name_then_strings_and_numbers_in_key_order() -> None:
    assert entity_text("customer", CUSTOMER, DEFAULT) == (
        "customer: Acme Systems 5; industry: Technology; region: AMER; "
        "relationship strength: 0.03; value score: 63.5"
    )


def test_an_entity_with_a_description_is_its_type_and_description() -> None:
    described = {**CUSTOMER, "description": "High-value customer in the\ntechnology sector"}
    assert entity_text("customer", described, DEFAULT) == (
        "customer: High-value customer in the technology sector"
    )
    # A blank description is no description; a configured type embeds its fields as listed.
    assert entity_text("customer", {**CUSTOMER, "description": " "}, DEFAULT) == entity_text(
        "customer", CUSTOMER, DEFAULT
    )
    configured = Settings(search_text_fields={"customer": ["industry"]})
    assert entity_text("customer", described, configured) == (
        "customer: Acme Systems 5; industry: Technology"
    )


def test_the_example_graphs_other_types() -> None:
    product = {"category": "Hardware", "name": "Storage Array 1", "price": 950.91}
    assert entity_text("product", product, DEFAULT) == (
        "product: Storage Array 1; category: Hardware; price: 950.91"
    )
    feedback = {"rating": 2, "text": "Slow\n\n onboarding.\tNo call back."}
    assert entity_text("feedback", feedback, DEFAULT) == (
        "feedback; rating: 2; text: Slow onboarding. No call back."
    )
    assert entity_text("business_unit", {}, DEFAULT) == "business unit"


def test_default_leaves_out_booleans_nulls_and_objects_and_joins_lists() -> None:
    props = {
        "active": True,
        "address": {"city": "Paris"},
        "note": None,
        "empty": "   ",
        "tags": ["b2b", "saas", 3, True, {"x": 1}],
        "zero": 0,
    }
    assert entity_text("account", props, DEFAULT) == "account; tags: b2b, saas, 3; zero: 0"


def test_configured_fields_in_their_order_with_paths() -> None:
    settings = Settings(
        search_text_fields={"customer": ["region", "address.city", "missing", "active", "name"]}
    )
    props = {**CUSTOMER, "address": {"city": "Lyon", "zip": "69001"}, "active": False}
    assert entity_text("customer", props, settings) == (
        "customer: Acme Systems 5; region: AMER; address city: Lyon; active: false"
    )
    # Other types keep the default.
    assert entity_text("product", {"name": "Kit", "price": 5}, settings) == (
        "product: Kit; price: 5"
    )
    # A configured object is embedded whole, its keys sorted.
    whole = Settings(search_text_fields={"customer": ["address"]})
    assert entity_text("customer", props, whole) == (
        "customer: Acme Systems 5; address: city: Lyon, zip: 69001"
    )


def test_the_setting_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIA_SEARCH_TEXT_FIELDS", json.dumps({"customer": ["industry"]}))
    assert Settings().search_text_fields == {"customer": ["industry"]}
    for bad in ({"not a type": ["x"]}, {"customer": [""]}, {"customer": ["a..b"]}):
        monkeypatch.setenv("AIA_SEARCH_TEXT_FIELDS", json.dumps(bad))
        with pytest.raises(ValidationError, match="AIA_SEARCH_TEXT_FIELDS"):
            Settings()


def test_values_and_the_whole_text_are_capped() -> None:
    text = entity_text("doc", {"body": "word " * 1000}, DEFAULT)
    assert text.startswith("doc; body: word word")
    assert len(text) == len("doc; body: ") + MAX_VALUE_CHARS - 1  # cut value, trailing space
    many = {f"field_{i:03d}": "x" * 100 for i in range(100)}
    assert len(entity_text("doc", many, DEFAULT)) <= DEFAULT.search_text_max_chars
    small = Settings(search_text_max_chars=100)
    assert len(entity_text("doc", many, small)) <= 100


def test_non_ascii_is_kept() -> None:
    assert entity_text("city", {"name": "Zürich", "nom": "東京"}, DEFAULT) == (
        "city: Zürich; nom: 東京"
    )


def test_text_hash_is_the_sha256_of_the_text_and_follows_changes() -> None:
    a = entity_text("customer", CUSTOMER, DEFAULT)
    assert text_hash(a) == text_hash(entity_text("customer", dict(CUSTOMER), DEFAULT))
    assert len(text_hash(a)) == 64 and int(text_hash(a), 16) >= 0
    changed = entity_text("customer", {**CUSTOMER, "region": "EMEA"}, DEFAULT)
    assert text_hash(changed) != text_hash(a)
    # Properties that are not embedded do not change the text, so no re-embedding.
    flag = entity_text("customer", {**CUSTOMER, "vip": True}, DEFAULT)
    assert text_hash(flag) == text_hash(a)
