"""Dataset files parsed as they stream (aia_engine/datasets/files.py) and the schema inferred
from their records (schema.py): no services."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aia_engine.datasets.files import CountedBytes, _cell, parse_records
from aia_engine.datasets.schema import SchemaBuilder
from aia_engine.errors import DatasetTooLarge, InvalidDatasetFile


def parse(
    data: bytes, fmt: str, *, chunk: int = 3, max_bytes: int = 10_000, max_record: int = 1 << 20
) -> list[Any]:
    """Records of `data` fed in tiny chunks, so every boundary is crossed."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return list(parse_records(CountedBytes(chunks, max_bytes, max_record), fmt))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12), ("-3.5", -3.5), ("1e3", 1000.0), ("007", "007"), ("0", 0), (".5", 0.5),
        ("+5", 5), (" 7 ", 7), ("", None), ("  ", None), ("north", "north"),
        ("2025-01-02", "2025-01-02"), ("1_000", "1_000"), ("1e999", "1e999"), ("nan", "nan"),
        ("1234567890123456789", 1.2345678901234568e18), ("١٢", "١٢"), ("9" * 309, "9" * 309),
        ("-" + "9" * 309, "-" + "9" * 309),
    ],
)  # fmt: skip
def test_csv_cells_become_numbers_only_when_they_read_as_one(text: str, value: Any) -> None:
    got = _cell(text)
    assert got == value and type(got) is type(value)


def test_formats_parse_across_chunk_boundaries() -> None:
    records = [{"a": 1, "b": 'x,"y"\nz'}, {"a": 2.5, "b": None}]
    assert parse(json.dumps(records).encode(), "json") == records
    assert parse(json.dumps({"records": records}).encode(), "json") == records
    lines = "\n".join(json.dumps(r) for r in records) + "\n\n"
    assert parse(lines.encode(), "jsonl") == records
    table = '\ufeffa,b\n1,"x,""y""\nz"\n\n2.5,\n'.encode()
    assert parse(table, "csv") == records


@pytest.mark.parametrize(
    ("data", "fmt", "words", "issue"),
    [
        (b"a\n1\n2\n\xff\n", "csv", "line 4 is not UTF-8", "not UTF-8"),
        (b"a,b\n1\n", "csv", "line 2", None),
        (b"a\nx\x00\n", "csv", "line 2 holds a NUL", "NUL character"),
        (b"", "csv", "header", None),
        (b"a,a\n1,2\n", "csv", "once", None),
        (b"[1]", "json", "item 0 is a number", None),
        (b'{"a": 1}', "json", '"records"', None),
        (b'"text"', "json", "array of objects", None),
        (b'[{"a": NaN}]', "json", "item 0", "NaN or infinity"),
        (b'[{"a": 1}, {"a": -Infinity}]', "json", "item 1", "NaN or infinity"),
        (b'{"a": NaN}\n', "jsonl", "line 1", "NaN or infinity"),
        (b'[{"a": 1e400}]', "json", "item 0", "number out of range"),
        (b'{"a": 1e400}\n', "jsonl", "line 1", "number out of range"),
        (b'[{"a": 9223372036854775808}]', "json", "64-bit", "number out of range"),
        (b'{"a": -9223372036854775809}\n', "jsonl", "64 bits", "number out of range"),
        (b'[{"a": "x\\ud800"}]', "json", "lone surrogate", "lone surrogate"),
        (b'[{"a": "\\udc00 y"}]', "json", "lone surrogate", "lone surrogate"),
        (b'[{"a": "\xff"}]', "json", "UTF8", "not UTF-8"),
        (b'{"a": 1}\n[]\n', "jsonl", "line 2 is an array", None),
        (b'{"a": 1}\n{"a": \n', "jsonl", "line 2 is not valid JSON", None),
        (b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}\n", "jsonl", "nested", "nested too deeply"),
    ],
)
def test_bad_files_say_what_and_where(data: bytes, fmt: str, words: str, issue: str | None) -> None:
    with pytest.raises(InvalidDatasetFile) as refused:
        parse(data, fmt)
    assert refused.value.code == "E064" and words in refused.value.message
    if issue is not None:
        assert refused.value.details["issue"] == issue


def test_json_arrays_and_lines_agree_on_big_integers_and_surrogates() -> None:
    edge = {"big": 9223372036854775807, "small": -9223372036854775807, "pair": "\U0001f600"}
    assert parse(json.dumps([edge]).encode(), "json") == [edge]
    assert parse(json.dumps(edge).encode() + b"\n", "jsonl") == [edge]
    # an escaped backslash before "ud800" is text, not an escape; a pair cut across chunks
    text = rb'[{"a": "\\ud800", "b": "\ud83d\ude00"}]'
    with pytest.raises(InvalidDatasetFile, match="lone surrogate"):  # in one chunk
        parse(rb'[{"a": "\ud800"}]', "json", chunk=100)
    for chunk in (1, 2, 5, 7, 64):
        assert parse(text, "json", chunk=chunk) == [{"a": "\\ud800", "b": "\U0001f600"}]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_one_record_past_the_record_limit_is_refused_while_it_is_read(fmt: str) -> None:
    huge = "x" * 2_000_000
    small = {"a": 1, "b": "y"}
    body = {
        "csv": f"a,b\n1,y\n2,{huge}\n".encode(),
        "jsonl": (json.dumps(small) + "\n" + json.dumps({"a": 2, "b": huge}) + "\n").encode(),
        "json": json.dumps([small, {"a": 2, "b": huge}]).encode(),
    }[fmt]
    source = CountedBytes([body[i : i + 4096] for i in range(0, len(body), 4096)], 1 << 30, 1000)
    records = parse_records(source, fmt)
    assert next(records) in (small, {"a": 1, "b": "y"})
    with pytest.raises(DatasetTooLarge) as refused:
        next(records)
    assert refused.value.details["setting"] == "AIA_DATASET_MAX_RECORD_BYTES"
    if fmt != "json":
        assert refused.value.details["line"] in (3, 2)
    # read while the record streams in: far less than the whole record was handed on
    assert source.handed < 1000 + 6 * 65_536
    # under the limit it fits (a CSV cell may hold 131,072 characters: Python's csv module)
    cell = "x" * (131_072 if fmt == "csv" else 2_000_000)
    body = body.replace(huge.encode(), cell.encode())
    fits = parse(body, fmt, chunk=65_536, max_bytes=1 << 30, max_record=2_100_000)
    assert len(fits) == 2 and fits[1]["b"] == cell


def test_a_csv_record_over_several_lines_counts_them_all() -> None:
    lines = "\n".join("z" * 300 for _ in range(5))
    with pytest.raises(DatasetTooLarge):
        parse(f'a,b\n1,"{lines}"\n'.encode(), "csv", chunk=100, max_record=1000)
    assert parse(f'a,b\n1,"{lines}"\n2,x\n'.encode(), "csv", chunk=100, max_record=2000)[1] == {
        "a": 2,
        "b": "x",
    }


def test_the_byte_limit_holds_while_streaming() -> None:
    with pytest.raises(DatasetTooLarge) as refused:
        parse(b"a\n" + b"1\n" * 100, "csv", max_bytes=50)
    assert refused.value.details["setting"] == "AIA_DATASET_MAX_BYTES"


def test_schema_lists_columns_in_order_with_types_and_nulls() -> None:
    builder = SchemaBuilder()
    for record in (
        {"id": 1, "v": 2, "s": "x", "o": {"k": 1}},
        {"id": 2, "v": 2.5, "s": 3, "flag": True},
        {"id": 3, "v": None, "s": None},
    ):
        builder.add(record)
    assert builder.columns() == [
        {"name": "id", "type": "integer", "nulls": 0},
        {"name": "v", "type": "number", "nulls": 1},
        {"name": "s", "type": "mixed", "nulls": 1},
        {"name": "o", "type": "object", "nulls": 2},
        {"name": "flag", "type": "boolean", "nulls": 2},
    ]
