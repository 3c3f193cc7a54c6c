"""Reading graph import files: JSON Lines and CSV rows, CSV values, and the CSV export cells
that must read back as the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from aia_engine.graph.exports import csv_row, reads_back
from aia_engine.graph.imports import (
    GraphImportFileError,
    csv_value,
    inspect_file,
    parse_csv_record,
    parse_json_line,
    read_rows,
)
from aia_engine.graph.model import NodeIn, RelationshipIn, derived_relationship_id


def test_a_json_line_is_a_node_or_a_relationship_by_kind_or_by_its_fields() -> None:
    node = parse_json_line(
        '{"kind":"node","node_id":"c1","type":"customer","properties":{"a":1}}', 3
    )
    assert (node.line, node.kind, node.error) == (3, "node", None)
    assert node.node == NodeIn("c1", "customer", {"a": 1})
    rel = parse_json_line('{"type":"PURCHASED","source":"c1","target":"p1"}', 4)
    assert rel.kind == "relationship" and rel.error is None
    assert rel.relationship == RelationshipIn(
        derived_relationship_id("c1", "PURCHASED", "p1"), "PURCHASED", "c1", "p1", {}
    )
    given = parse_json_line(
        '{"kind":"relationship","relationship_id":"r9","type":"X","source":"a","target":"b",'
        '"properties":{"amount":2.5}}',
        5,
    )
    assert given.relationship is not None
    assert given.relationship.relationship_id == "r9"
    assert given.relationship.properties == {"amount": 2.5}


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [
        ('{"kind":"node","node_id":"a"', "node", "not valid JSON"),
        ("[1, 2]", "node", "not an array"),
        ('"x"', "node", "not a string"),
        ('{"kind":"edge","node_id":"a","type":"t"}', "node", "kind must be"),
        ('{"kind":"node","node_id":"","type":"t"}', "node", "node.node_id"),
        ('{"kind":"node","node_id":"a","type":"no spaces"}', "node", "node.type"),
        ('{"kind":"node","node_id":"a","type":"t","properties":{"type":1}}', "node", "reserved"),
        ('{"kind":"node","node_id":"a","type":"t","extra":1}', "node", "unknown fields"),
        ('{"kind":"relationship","type":"T","source":"a"}', "relationship", "target"),
        ('{"kind":"node","node_id":"a","type":"t","properties":{"x":NaN}}', "node", "plain JSON"),
    ],
)
def test_a_bad_json_line_is_a_row_error_that_says_why(text: str, kind: str, says: str) -> None:
    row = parse_json_line(text, 7)
    assert row.node is None and row.relationship is None
    assert row.line == 7 and row.kind == kind
    assert row.error is not None and says in row.error


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("12", 12),
        ("-3.5", -3.5),
        ("1e3", 1000.0),
        ("0", 0),
        ("0.5", 0.5),
        ("007", "007"),
        ("12 ", "12 "),
        ("1,5", "1,5"),
        ("true", "true"),
        ("1e999", "1e999"),
        ("Technology", "Technology"),
    ],
)
def test_csv_cells_are_numbers_when_they_read_as_one(cell: str, value: object) -> None:
    got = csv_value(cell)
    assert got == value and type(got) is type(value)


HEADER = ["kind", "node_id", "type", "source", "target", "relationship_id", "name", "amount",
          "properties"]  # fmt: skip


def test_csv_records_become_nodes_and_relationships() -> None:
    node = parse_csv_record(HEADER, ["node", "c1", "customer", "", "", "", "Acme", "", ""], 2)
    assert node.node == NodeIn("c1", "customer", {"name": "Acme"})
    inferred = parse_csv_record(HEADER, ["", "", "PURCHASED", "c1", "p1", "", "", "12.5", ""], 3)
    assert inferred.kind == "relationship"
    assert inferred.relationship is not None
    assert inferred.relationship.properties == {"amount": 12.5}
    nested = parse_csv_record(
        HEADER, ["node", "c2", "customer", "", "", "", "B", "", '{"tags": ["a"], "vip": true}'], 4
    )
    assert nested.node == NodeIn("c2", "customer", {"name": "B", "tags": ["a"], "vip": True})


@pytest.mark.parametrize(
    ("cells", "says"),
    [
        (["node", "c1", "customer"], "3 cells; the header has 9"),
        (["node", "c1", "customer", "x", "", "", "", "", ""], "node row leaves source"),
        (["relationship", "c1", "T", "a", "b", "", "", "", ""], "leaves node_id empty"),
        (["node", "c1", "customer", "", "", "", "A", "", '{"name": "B"}'], "both a column"),
        (["node", "c1", "customer", "", "", "", "", "", "[1]"], "a JSON object"),
        (["node", "c1", "customer", "", "", "", "", "", "{oops"], "not valid JSON"),
        (["node", "c1", "", "", "", "", "", "", ""], "node.type"),
    ],
)
def test_a_bad_csv_record_is_a_row_error(cells: list[str], says: str) -> None:
    row = parse_csv_record(HEADER, cells, 9)
    assert row.line == 9 and row.error is not None and says in row.error


def test_csv_files_give_line_numbers_of_the_file_and_skip_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text('node_id,type,note\na,t,"two\nlines"\n\nb,t,x\n')
    rows = list(read_rows(path, "csv"))
    assert [(r.line, r.node.node_id if r.node else None) for r in rows] == [(2, "a"), (5, "b")]
    assert rows[0].node is not None and rows[0].node.properties == {"note": "two\nlines"}
    assert [r.line for r in read_rows(path, "csv", ["relationship"])] == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "header row"),
        ("a,b\n", "needs a type column"),
        ("node_id,type,type\n", "once"),
    ],
)
def test_a_csv_file_without_a_usable_header_is_refused(
    tmp_path: Path, content: str, says: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(GraphImportFileError, match=says):
        list(read_rows(path, "csv"))


def test_inspect_counts_rows_and_refuses_what_is_not_utf8(tmp_path: Path) -> None:
    good = tmp_path / "g.jsonl"
    good.write_text('{"a":1}\n\n  \n{"b":2}')
    info = inspect_file(good, "jsonl")
    assert info.rows == 2 and len(info.sha256) == 64
    bad = tmp_path / "b.jsonl"
    bad.write_bytes(b'{"a":1}\n{"b":"\xff"}\n')
    with pytest.raises(GraphImportFileError, match="line 2 is not UTF-8"):
        inspect_file(bad, "jsonl")
    with pytest.raises(GraphImportFileError, match="is a directory"):
        inspect_file(tmp_path, "jsonl")
    with pytest.raises(GraphImportFileError, match="cannot read"):
        inspect_file(tmp_path / "missing.jsonl", "jsonl")


@pytest.mark.parametrize(
    "value",
    ["text", "12", "007", "", " 1", True, None, 5, -2.5, 1e300, 10**30, [1], {"a": 1}, "a\nb"],
)
def test_export_cells_read_back_as_the_same_value_or_go_to_the_json_column(value: object) -> None:
    cell = reads_back(value)
    if cell is not None:
        back = csv_value(cell)
        assert back == value and type(back) is type(value)
    item = {"kind": "node", "node_id": "n", "type": "t", "properties": {"p": value}}
    header = ["kind", "node_id", "type", "source", "target", "relationship_id", "p", "properties"]
    record = csv_row(item, ["p"])
    row = parse_csv_record(header, record, 2)
    assert row.error is None and row.node is not None
    assert row.node.properties == {"p": value}
    assert type(row.node.properties["p"]) is type(value)
