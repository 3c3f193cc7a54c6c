"""Dataset files parsed as they stream (aia_engine/datasets/files.py) and the schema inferred
from their records (schema.py): no services."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aia_engine.datasets.files import CountedBytes, _cell, parse_records
from aia_engine.datasets.schema import SchemaBuilder
from aia_engine.errors import DatasetTooLarge, InvalidDatasetFile


def parse(data: bytes, fmt: str, *, chunk: int = 3, max_bytes: int = 10_000) -> list[Any]:
    """Records of `data` fed in tiny chunks, so every boundary is crossed."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return list(parse_records(CountedBytes(chunks, max_bytes), fmt))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12), ("-3.5", -3.5), ("1e3", 1000.0), ("007", "007"), ("0", 0), (".5", 0.5),
        ("+5", 5), (" 7 ", 7), ("", None), ("  ", None), ("north", "north"),
        ("2025-01-02", "2025-01-02"), ("1_000", "1_000"), ("1e999", "1e999"), ("nan", "nan"),
        ("1234567890123456789", 1.2345678901234568e18), ("١٢", "١٢"),
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
    ("data", "fmt", "words"),
    [
        (b"a\n\xff\n", "csv", "UTF-8"),
        (b"a,b\n1\n", "csv", "line 2"),
        (b"a\nx\x00\n", "csv", "NUL"),
        (b"", "csv", "header"),
        (b"a,a\n1,2\n", "csv", "once"),
        (b"[1]", "json", "item 0 is a number"),
        (b'{"a": 1}', "json", '"records"'),
        (b'"text"', "json", "array of objects"),
        (b'[{"a": NaN}]', "json", "NaN"),
        (b'{"a": 1}\n[]\n', "jsonl", "line 2 is an array"),
        (b'{"a": 1}\n{"a": \n', "jsonl", "line 2 is not valid JSON"),
    ],
)
def test_bad_files_say_what_and_where(data: bytes, fmt: str, words: str) -> None:
    with pytest.raises(InvalidDatasetFile, match=None) as refused:
        parse(data, fmt)
    assert refused.value.code == "E064" and words in refused.value.message


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
