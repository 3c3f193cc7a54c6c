"""Semantic search requests are checked field by field (422 E062 naming the field), and a
result's match_explanation is computed from the entity's fields and the query's words."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from aia_engine.errors import InvalidSemanticSearch
from aia_engine.search import inputs
from aia_engine.search.query import (
    DEFAULT_LIMIT,
    FieldVectors,
    Found,
    SearchSpec,
    Vector,
    explain,
    fields_of,
    parse_search,
    query_terms,
    terms_found,
)
from aia_engine.settings import Settings

SETTINGS = Settings(search_query_max_chars=1000, search_explain_top=10)


class BagOfWords:
    """A stand-in encoder: each word a fixed random direction, a text their normalised sum, so
    texts sharing words are close and the cosine is known."""

    name = "bag-of-words@test"
    dim = 384

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def word(self, word: str) -> Vector:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
        return np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> Vector:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", text.lower()):
                out[i] += self.word(w)
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


def entity_text(node_type: str, properties: Mapping[str, Any], settings: Settings) -> str:
    shown = ", ".join(f"{k}: {v}" for k, v in properties.items() if k != "secret")
    return f"{node_type}: {shown}"


def bad(raw: Any, where: str = "") -> InvalidSemanticSearch:
    with pytest.raises(InvalidSemanticSearch) as caught:
        parse_search(raw, where, SETTINGS)
    assert caught.value.code == "E062" and caught.value.status == 422
    return caught.value


def test_a_body_with_the_guides_fields_is_read_with_its_defaults() -> None:
    spec = parse_search({"query": "high-value customers in technology sector"}, "", SETTINGS)
    assert spec == SearchSpec("high-value customers in technology sector", DEFAULT_LIMIT, 0.0)
    spec = parse_search(
        {"query": "q", "limit": 100, "threshold": 1, "include_explanations": False,
         "entity_types": ["customer", "customer", "support_ticket"],
         "filters": {"region": "EMEA", "value_score": 8.5, "active": True}},
        "", SETTINGS,
    )  # fmt: skip
    assert spec.limit == 100 and spec.threshold == 1.0 and spec.include_explanations is False
    assert spec.entity_types == ("customer", "support_ticket")
    assert spec.filters == {"region": "EMEA", "value_score": 8.5, "active": True}
    assert parse_search({"query": "q", "entity_types": []}, "", SETTINGS).entity_types is None


@pytest.mark.parametrize(
    ("raw", "field", "issue"),
    [
        ({}, "query", "missing"),
        ({"query": ""}, "query", "blank"),
        ({"query": " \n\t "}, "query", "blank"),
        ({"query": 7}, "query", "not text"),
        ({"query": "x" * 1001}, "query", "too long"),
        ({"query": "x" * 100_000}, "query", "too long"),
        ({"query": "q", "limit": 0}, "limit", "out of range"),
        ({"query": "q", "limit": 101}, "limit", "out of range"),
        ({"query": "q", "limit": 10_000}, "limit", "out of range"),
        ({"query": "q", "limit": -1}, "limit", "out of range"),
        ({"query": "q", "limit": 2.5}, "limit", "not an integer"),
        ({"query": "q", "limit": True}, "limit", "not an integer"),
        ({"query": "q", "limit": "10"}, "limit", "not an integer"),
        ({"query": "q", "threshold": 2}, "threshold", "out of range"),
        ({"query": "q", "threshold": -0.1}, "threshold", "out of range"),
        ({"query": "q", "threshold": "0.5"}, "threshold", "not a number"),
        ({"query": "q", "threshold": float("nan")}, "threshold", "not a number"),
        ({"query": "q", "include_explanations": "yes"}, "include_explanations", "not a boolean"),
        ({"query": "q", "entity_types": "customer"}, "entity_types", "not a list"),
        ({"query": "q", "entity_types": ["bad type"]}, "entity_types[0]", "not a type name"),
        ({"query": "q", "entity_types": ["t"] * 51}, "entity_types", "too many"),
        ({"query": "q", "filters": ["region"]}, "filters", "not an object"),
        ({"query": "q", "filters": {"region": None}}, "filters.region", "not a scalar"),
        ({"query": "q", "filters": {"region": ["EMEA"]}}, "filters.region", "not a scalar"),
        ({"query": "q", "filters": {"type": "customer"}}, "filters.type", "not a property name"),
        ({"query": "q", "filters": {"__x": 1}}, "filters.__x", "not a property name"),
        ({"query": "q", "sort": "score"}, "sort", "unknown field"),
    ],
)
def test_each_bad_field_is_refused_by_name(raw: dict[str, Any], field: str, issue: str) -> None:
    error = bad(raw)
    assert (error.details["field"], error.details["issue"]) == (field, issue)


def test_a_long_query_is_refused_without_echoing_it_whole() -> None:
    error = bad({"query": "x" * 100_000})
    assert error.details["limit"] == 1000 and "100000 characters" in error.message
    assert len(error.details["provided_value"]) < 300


def test_the_query_length_limit_is_a_setting() -> None:
    settings = Settings(search_query_max_chars=20)
    assert parse_search({"query": "x" * 20}, "", settings).query == "x" * 20
    with pytest.raises(InvalidSemanticSearch, match="at most 20"):
        parse_search({"query": "x" * 21}, "", settings)


def test_not_an_object_is_refused() -> None:
    assert bad(["query"]).details["field"] == "body"


def test_query_terms_drop_stop_words_and_split_compounds() -> None:
    assert query_terms("Show me the high-value customers in the Technology sector") == [
        "high", "value", "customers", "technology", "sector"
    ]  # fmt: skip
    assert query_terms("a an of") == []


def test_terms_are_found_as_words_whatever_the_case_and_plural() -> None:
    text = "customer: name: Acme Tech, industry: Technology, value_score: 81.4"
    assert terms_found(["high", "value", "customers", "technology", "tech"], text) == [
        "value", "customers", "technology", "tech"
    ]  # fmt: skip
    assert terms_found(["tech"], "Technology") == []  # a word, not a part of one
    assert terms_found(["switches", "boxes", "class"], "Network Switch; box; classes") == [
        "switches", "boxes", "class"
    ]  # fmt: skip


def test_fields_are_those_the_embedded_text_holds() -> None:
    props = {"name": "Acme", "value_score": 81.0, "rate": 0.5, "active": True, "secret": "s3",
             "tags": ["a"]}  # fmt: skip
    text = entity_text("customer", props, SETTINGS)
    assert fields_of("customer", props, text) == [
        ("type", "customer"), ("name", "Acme"), ("value_score", "81.0"), ("rate", "0.5")
    ]  # fmt: skip


def test_the_explanation_names_the_closest_fields_with_their_cosine_and_the_terms_found() -> None:
    encoder = BagOfWords()
    query = "technology customers"
    query_vec = encoder.encode([query])[0]
    props = {"name": "Zeta Works", "industry": "Technology", "region": "EMEA"}
    [explanation] = explain(
        query, query_vec, [("customer", props)], encoder, SETTINGS,
        entity_text=entity_text, cache=FieldVectors(),
    )  # fmt: skip
    fields = {
        k: float(encoder.encode([f"{k.replace('_', ' ')}: {v}"])[0] @ query_vec)
        for k, v in {"type": "customer", **props}.items()
    }
    first, second = sorted(fields, key=lambda k: -fields[k])[:2]
    value = {"type": "customer", **props}
    assert explanation == (
        f"Closest fields: {first} '{value[first]}' ({fields[first]:.2f}), "
        f"{second} '{value[second]}' ({fields[second]:.2f}); "
        "query terms found: technology, customers"
    )
    assert {first, second} == {"industry", "type"}  # the fields sharing a word with the query


def test_explanations_differ_with_the_evidence() -> None:
    encoder = BagOfWords()
    query = "billing complaints"
    out = explain(
        query, encoder.encode([query])[0],
        [("feedback", {"text": "Unhappy about billing surprises", "rating": 1}),
         ("product", {"name": "Standing Desk", "category": "Office"})],
        encoder, SETTINGS, entity_text=entity_text, cache=FieldVectors(),
    )  # fmt: skip
    assert out[0].startswith("Closest fields: text 'Unhappy about billing surprises' (")
    assert out[0].endswith("; query terms found: billing")
    assert out[1].endswith("; no query term found as a word")


def test_only_the_top_results_have_their_fields_embedded() -> None:
    encoder = BagOfWords()
    entities = [("customer", {"name": f"Firm {i}", "industry": "Retail"}) for i in range(5)]
    settings = Settings(search_explain_top=2)
    cache = FieldVectors()
    out = explain(
        "retail", encoder.encode(["retail"])[0], entities, encoder, settings,
        entity_text=entity_text, cache=cache,
    )  # fmt: skip
    assert [o.startswith("Closest fields:") for o in out] == [True, True, False, False, False]
    assert out[4] == "Query terms found: retail"
    # Fields of the first two: the type and the industry once, each name: 4 texts embedded.
    assert cache.encoded == 4
    explain(
        "retail", encoder.encode(["retail"])[0], entities[:2], encoder, settings,
        entity_text=entity_text, cache=cache,
    )  # fmt: skip
    assert cache.encoded == 4  # all cached


def test_the_field_cache_is_bounded() -> None:
    encoder = BagOfWords()
    cache = FieldVectors(max_items=3)
    cache.vectors(encoder, ["a", "b", "c"])
    cache.vectors(encoder, ["a", "d"])  # a is used again, so b goes first
    cache.vectors(encoder, ["a", "c", "d"])
    assert cache.encoded == 4
    cache.vectors(encoder, ["b"])
    assert cache.encoded == 5


def test_a_stage_record_is_its_id_score_and_type_then_its_properties() -> None:
    found = Found("c1", "customer", {"name": "Acme", "type_code": 3, "entity_id": "x"}, 0.812345)
    assert inputs.record(found) == {
        "entity_id": "c1", "similarity_score": 0.8123, "type": "customer", "name": "Acme",
        "type_code": 3,
    }  # fmt: skip


def test_the_stage_param_takes_no_explanations_and_refuses_its_input_name_as_a_dependency() -> None:
    spec = inputs.parse_semantic_search(
        {"query": "q", "limit": 5, "entity_types": ["customer"]}, "workflow.s.params",
        settings=SETTINGS,
    )  # fmt: skip
    assert spec == SearchSpec("q", 5, 0.0, False, ("customer",))
    with pytest.raises(InvalidSemanticSearch) as caught:
        inputs.parse_semantic_search({"query": "q", "include_explanations": True}, "w.s.params")
    assert caught.value.details["field"] == "w.s.params.semantic_search.include_explanations"
    with pytest.raises(InvalidSemanticSearch) as caught:
        inputs.parse_semantic_search({"query": ""}, "w.s.params")
    assert caught.value.details["field"] == "w.s.params.semantic_search.query"
    with pytest.raises(InvalidSemanticSearch, match="rename that stage"):
        inputs.parse_semantic_search({"query": "q"}, "w.s.params", ("similar",))
