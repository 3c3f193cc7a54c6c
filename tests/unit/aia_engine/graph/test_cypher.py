"""The Cypher lexer: quoting, parameter binding, refusals and the proof that a parameter's
value can never change the query's structure (the parse tree is the same for any value)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import pytest
from lark import Token, Tree

from aia_engine.errors import (
    CypherSyntaxError,
    InvalidQueryParameters,
    QueryLimitExceeded,
    UnsupportedCypher,
)
from aia_engine.graph.cache import edge_attributes, node_attributes
from aia_engine.graph.cypher import VALUE_TOKENS, parse, prepare
from aia_engine.graph.query import query_graph
from aia_engine.settings import Settings

SETTINGS = Settings()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def shape(tree: Tree[Token] | Token) -> Any:
    """The parse tree with every literal value blanked: what the query *does*."""
    if isinstance(tree, Token):
        return tree.type if tree.type in VALUE_TOKENS else (tree.type, str(tree))
    return (str(tree.data), [shape(c) for c in tree.children])


def literal_values(tree: Tree[Token]) -> list[Any]:
    return [t for t in tree.scan_values(lambda v: isinstance(v, Token)) if t.type in VALUE_TOKENS]


# -- strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("'customer'", "customer"),
        ('"Technology"', "Technology"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        (r"'a\nb\tc\rd\be\ff'", "a\nb\tc\rd\be\ff"),
        (r"'caf\u00e9'", "café"),
        (r"'\U0001F600'", "\U0001f600"),
        (r"'\uD83D\uDE00'", "\U0001f600"),
        ("'double \" inside single'", 'double " inside single'),
        ("\"single ' inside double\"", "single ' inside double"),
        ("'RETURN n DETACH DELETE n // not a comment /* nor this */'",
         "RETURN n DETACH DELETE n // not a comment /* nor this */"),
    ],
)  # fmt: skip
def test_string_literals_reach_grand_cypher_as_their_value(written: str, value: str) -> None:
    prepared = prepare(f"MATCH (n) WHERE n.name = {written} RETURN n")
    tree = parse(prepared)
    [token] = literal_values(tree)
    assert token.type == "ESTRING"
    assert json.loads(str(token)) == value
    assert eval(str(token)) == value  # what grand-cypher does with it


@pytest.mark.parametrize(
    ("query", "line", "column"),
    [
        ("MATCH (n) WHERE n.name = 'open", 1, 26),
        ("MATCH (n)\nWHERE n.name = 'a\\qb'\nRETURN n", 2, 18),
        ("MATCH (n) WHERE n.name = '\\u12' RETURN n", 1, 27),
        ("MATCH (n) WHERE n.name = '\\uD800' RETURN n", 1, 26),
        ("MATCH (n) /* never closed RETURN n", 1, 11),
    ],
)
def test_bad_string_literals_are_syntax_errors_at_their_place(
    query: str, line: int, column: int
) -> None:
    with pytest.raises(CypherSyntaxError) as caught:
        prepare(query)
    assert (caught.value.details["line"], caught.value.details["column"]) == (line, column)


# -- parse errors point into the client's own text -----------------------------------------


def test_a_parse_error_names_the_line_and_column_of_the_clients_text() -> None:
    # the string before the error is re-written shorter ("it's"): the column is still ours
    query = "MATCH (n:Customer)\nWHERE n.name = 'it\\'s' )) RETURN n"
    with pytest.raises(CypherSyntaxError) as caught:
        parse(prepare(query))
    assert caught.value.code == "E030"
    assert (caught.value.details["line"], caught.value.details["column"]) == (2, 24)
    assert "line 2, column 24" in caught.value.message


def test_a_leading_zero_number_is_a_syntax_error_not_a_crash() -> None:
    with pytest.raises(CypherSyntaxError):
        prepare("MATCH (n) WHERE n.age = 0123 RETURN n")


# -- keywords and aggregates --------------------------------------------------------------


@pytest.mark.parametrize("name", ["count", "Count", "COUNT", "sum", "avg", "min", "max", "collect"])
def test_aggregates_are_accepted_in_any_case(name: str) -> None:
    prepared = prepare(f"MATCH (n) RETURN {name}(n.v) AS x")
    assert f"{name.upper()}(n.v)" in prepared.text
    parse(prepared)


def test_starts_with_spread_over_whitespace_reads() -> None:
    parse(prepare("MATCH (n) WHERE n.name STARTS\n   WITH 'a' OR n.name ENDS  with 'z' RETURN n"))


def test_keywords_as_property_names_labels_and_map_keys_are_names() -> None:
    parse(prepare("MATCH (n:Set {with: 1}) WHERE n.delete = 2 AND n.create = 3 RETURN n.set"))


REFUSED = [
    ("CREATE (n:Customer {name: 'x'})", "CREATE"),
    ("MERGE (n:Customer {name: 'x'}) RETURN n", "MERGE"),
    ("MATCH (n) SET n.name = 'x'", "SET"),
    ("MATCH (n) DELETE n", "DELETE"),
    ("MATCH (n) DETACH DELETE n", "DETACH DELETE"),
    ("MATCH (n) REMOVE n.name", "REMOVE"),
    ("CALL db.labels()", "CALL"),
    ("LOAD CSV FROM 'file:///x' AS row RETURN row", "LOAD CSV"),
    ("MATCH (n) FOREACH (x IN [1] | SET n.v = x)", "FOREACH"),
    ("UNWIND [1, 2] AS x RETURN x", "UNWIND"),
    ("MATCH (n) WITH n RETURN n", "WITH"),
    ("OPTIONAL MATCH (n) RETURN n", "OPTIONAL MATCH"),
    ("MATCH (n) RETURN n UNION MATCH (m) RETURN m", "UNION"),
    ("MATCH (n) RETURN CASE WHEN n.v > 1 THEN 1 ELSE 0 END", "CASE"),
    ("MATCH (a)-[*]->(b) RETURN b", "unbounded variable-length"),
    ("MATCH (a)-[r:KNOWS*]->(b) RETURN b", "unbounded variable-length"),
    ("MATCH (a)-[*3..]->(b) RETURN b", "without an upper bound"),
    ("MATCH (a)-[*1..5]->(b) RETURN b", "deeper than 3"),
    ("MATCH (n) RETURN n.`first name`", "backtick"),
    ("MATCH (n) WHERE n.name IS NOT NULL RETURN n", "IS NOT NULL"),
    ("MATCH (n) RETURN n.__labels__", "__labels__"),
    ("MATCH (n) WHERE n.name IN $names RETURN n", None),  # accepted: control row
]


@pytest.mark.parametrize(("query", "construct"), REFUSED)
def test_unsupported_constructs_are_refused_by_name(query: str, construct: str | None) -> None:
    if construct is None:
        parse(prepare(query, {"names": ["a"]}))
        return
    with pytest.raises(UnsupportedCypher) as caught:
        parse(prepare(query))
    assert caught.value.code == "E031"
    assert construct in caught.value.details["construct"]
    assert caught.value.details["documentation"].startswith("docs/knowledge-graph.md")


def test_keywords_inside_strings_and_comments_are_not_refused() -> None:
    query = (
        "MATCH (n) // DETACH DELETE n\n"
        "WHERE n.name = 'CREATE (x) SET n.a = 1 WITH n UNION CALL x()' /* MERGE */ RETURN n"
    )
    parse(prepare(query))


@pytest.mark.parametrize(
    ("written", "meant"),
    [("[*..2]", "*1..2"), ("[*2]", "*2..2"), ("[r:A|B*1..3]", "*1..3"), ("[ * 0 .. 1 ]", "*0..1")],
)
def test_bounded_variable_length_is_written_the_way_grand_cypher_reads_it(
    written: str, meant: str
) -> None:
    prepared = prepare(f"MATCH (a)-{written}->(b) RETURN b")
    assert meant in prepared.text
    parse(prepared)


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "token_type"),
    [("x", "ESTRING"), (3, "NUMBER"), (-2.5, "NUMBER"), (True, "TRUE"), (False, "FALSE"),
     (None, "NULL")],
)  # fmt: skip
def test_a_scalar_parameter_becomes_one_literal_token(value: Any, token_type: str) -> None:
    tree = parse(prepare("MATCH (n) WHERE n.v = $v RETURN n", {"v": value}))
    assert [t.type for t in literal_values(tree)] == [token_type]


def test_a_list_parameter_binds_after_in_only() -> None:
    tree = parse(prepare("MATCH (n) WHERE n.v IN $vs RETURN n", {"vs": ["a", 1, None]}))
    assert [t.type for t in literal_values(tree)] == ["ESTRING", "NUMBER", "NULL"]
    with pytest.raises(UnsupportedCypher, match="outside IN"):
        prepare("MATCH (n) WHERE n.v = $vs RETURN n", {"vs": ["a"]})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "no value: \\$v"),
        ({"v": 1, "w": 2}, "not used by the query: w"),
        ({"v": {"a": 1}}, "is a dict"),
        ({"v": float("nan")}, "not a finite number"),
        ({"v": float("inf")}, "not a finite number"),
        ({"v": 2**70}, "outside 64 bits"),
        ({"v": "\ud800"}, "lone surrogate"),
    ],
)
def test_parameters_that_do_not_fit_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidQueryParameters, match=message) as caught:
        prepare("MATCH (n) WHERE n.v = $v RETURN n", params)
    assert caught.value.code == "E032"


def test_a_parameter_where_no_value_may_stand_is_refused() -> None:
    # $x as a node variable, a label or a property name: never structure.
    for query in ("MATCH ($x) RETURN 1", "MATCH (n:$x) RETURN n", "MATCH (n) RETURN n.$x"):
        with pytest.raises((UnsupportedCypher, CypherSyntaxError)):
            parse(prepare(query, {"x": "n"}))


INJECTIONS = [
    "plain",
    "it's",
    'say "hi"',
    "\\",
    '\\\\"',
    "' OR 1=1 //",
    '" OR n.name <> "',
    'x" }) RETURN n //',
    "{name: 'x'}",
    "'}) MATCH (m) DETACH DELETE m //",
    "RETURN n",
    "DETACH DELETE n",
    "// comment",
    "/* block */",
    "*/ RETURN n /*",
    "\\u0041",
    "\\U0001F600",
    "line\nbreak\r\n\ttab",
    "emoji 😀 and 🚀",
    "NUL \x00 char",
    "$other",
    "[1, 2]",
    "",
]


def corpus_graph() -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    for i, value in enumerate(INJECTIONS):
        node_id = f"n{i}"
        graph.add_node(node_id, **node_attributes(node_id, "thing", {"name": value}, NOW))
    graph.add_node("decoy", **node_attributes("decoy", "thing", {"name": "harmless"}, NOW))
    return graph


POSITIONS = [
    "MATCH (n:Thing) WHERE n.name = $v RETURN n.node_id",
    "MATCH (n {name: $v}) RETURN n.node_id",
    "MATCH (n) WHERE n.name IN [$v, 'nothing'] RETURN n.node_id",
    "MATCH (n) WHERE n.type = 'thing' AND (n.name = $v OR n.name = 'nothing') RETURN n.node_id",
]


@pytest.mark.parametrize("query", POSITIONS)
@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
def test_a_parameter_is_a_value_whatever_it_holds(query: str, value: str) -> None:
    graph = corpus_graph()
    expected = sorted(n for n, a in graph.nodes(data=True) if a["name"] == value)
    answer = query_graph(graph, query, {"v": value}, settings=SETTINGS)
    assert sorted(answer.results) == expected
    # and the query's structure is the one it has with a harmless value
    harmless = parse(prepare(query, {"v": "harmless"}))
    bound = parse(prepare(query, {"v": value}))
    assert shape(bound) == shape(harmless)
    assert [eval(str(t)) for t in literal_values(bound) if t.type == "ESTRING"].count(value) == 1


def test_a_list_parameter_of_injections_matches_exactly_those_values() -> None:
    graph = corpus_graph()
    values = INJECTIONS[:12]
    answer = query_graph(
        graph, "MATCH (n) WHERE n.name IN $vs RETURN n.node_id", {"vs": values}, settings=SETTINGS
    )
    assert sorted(answer.results) == sorted(f"n{i}" for i in range(12))
    harmless = parse(prepare("MATCH (n) WHERE n.name IN $vs RETURN n", {"vs": ["a"] * 12}))
    bound = parse(prepare("MATCH (n) WHERE n.name IN $vs RETURN n", {"vs": values}))
    assert shape(bound) == shape(harmless)


# -- the answer's shape and bounds, in process --------------------------------------------


def small_graph() -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    graph.add_node("c1", **node_attributes("c1", "customer", {"name": "Acme"}, NOW))
    graph.add_node("p1", **node_attributes("p1", "product", {"category": "Technology"}, NOW))
    graph.add_edge(
        "c1", "p1", key="r1", **edge_attributes("r1", "PURCHASED", "c1", "p1", {"amount": 5})
    )
    return graph


def test_nodes_and_relationships_come_back_in_the_guides_shape() -> None:
    answer = query_graph(
        small_graph(),
        'MATCH (c:Customer)-[r:PURCHASED]->(p:Product) WHERE p.category = "Technology" '
        "RETURN c, r, p.category, count(p) AS n",
        settings=SETTINGS,
    )
    assert answer.results == [
        {
            "c": {"node_id": "c1", "type": "customer", "properties": {"name": "Acme"},
                  "connections": 1, "last_updated": "2026-01-01T00:00:00Z"},
            "r": {"relationship_id": "r1", "type": "PURCHASED", "source": "c1", "target": "p1",
                  "properties": {"amount": 5}},
            "p.category": "Technology",
            "n": 1,
        }
    ]  # fmt: skip


def test_count_with_limit_counts_every_match() -> None:
    graph = small_graph()
    for i in range(30):
        graph.add_node(f"x{i}", **node_attributes(f"x{i}", "thing", {}, NOW))
    answer = query_graph(graph, "MATCH (n) RETURN count(n) LIMIT 1", settings=SETTINGS)
    assert answer.results == [32]


@pytest.mark.parametrize("tail", ["LIMIT -3", "SKIP -2 LIMIT 3"])
def test_negative_limit_and_skip_are_refused(tail: str) -> None:
    with pytest.raises(CypherSyntaxError, match="non-negative integer"):
        query_graph(small_graph(), f"MATCH (n) RETURN n.node_id {tail}", settings=SETTINGS)


def test_rows_past_the_row_limit_are_cut_and_flagged() -> None:
    graph = small_graph()
    for i in range(30):
        graph.add_node(f"x{i}", **node_attributes(f"x{i}", "thing", {}, NOW))
    few = SETTINGS.model_copy(update={"kg_query_max_rows": 10})
    answer = query_graph(graph, "MATCH (n:Thing) RETURN n.node_id", settings=few)
    assert len(answer.results) == 10 and answer.metadata["truncated"] is True
    answer = query_graph(graph, "MATCH (n:Thing) RETURN n.node_id LIMIT 5", settings=few)
    assert len(answer.results) == 5 and answer.metadata["truncated"] is False


def test_a_long_query_is_stopped_at_its_time_limit() -> None:
    graph = nx.MultiDiGraph()
    for i in range(400):
        graph.add_node(f"x{i}", **node_attributes(f"x{i}", "thing", {"v": i}, NOW))
    quick = SETTINGS.model_copy(update={"kg_query_timeout_s": 0.2})
    with pytest.raises(QueryLimitExceeded) as caught:
        query_graph(graph, "MATCH (a) MATCH (b) MATCH (c) WHERE a.v = b.v RETURN count(a)",
                    settings=quick)  # fmt: skip
    assert caught.value.details["limit"] == "timeout_s"


def test_query_text_size_is_bounded() -> None:
    with pytest.raises(QueryLimitExceeded):
        query_graph(small_graph(), "MATCH (n) RETURN n " + " " * 20_000, settings=SETTINGS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("MATCH (n:Nothing) RETURN count(n)", [0]),
        ("MATCH (n:Nothing) RETURN count(n) AS c, sum(n.v) AS s", [{"c": 0, "s": 0}]),
        ("MATCH (n) RETURN n.name ORDER BY n.name", ["Acme", None]),
        ("MATCH (n) RETURN n.name ORDER BY n.name DESC", [None, "Acme"]),
        ("MATCH (n) RETURN DISTINCT n.type AS t ORDER BY t", ["customer", "product"]),
        ("MATCH (a)-[r]->(b) RETURN DISTINCT type(r)", ["PURCHASED"]),
        ("MATCH (c)-[r]->(p) RETURN c.node_id, count(p) AS n", [{"c.node_id": "c1", "n": 1}]),
    ],
)
def test_where_grand_cypher_falls_short_the_answer_is_cyphers(
    query: str, expected: list[Any]
) -> None:
    assert query_graph(small_graph(), query, settings=SETTINGS).results == expected
