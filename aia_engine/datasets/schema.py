"""A dataset's schema, inferred while its records stream in: the columns in order of first
appearance, each with one type and its count of nulls. Pure: no I/O.

A column's type is `integer`, `number` (integers and other numbers together are `number`),
`string`, `boolean`, `object`, `array`, `null` (only nulls) or `mixed` (values of several of
these). A record without the column counts as a null of it.
"""

from __future__ import annotations

from typing import Any

MAX_COLUMNS = 1000
"""Columns a schema lists at most (a record may hold more keys; they are not described)."""


def kind(value: Any) -> str:
    """The schema type of one JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def merged(kinds: set[str]) -> str:
    """One type for the non-null kinds a column held."""
    if not kinds:
        return "null"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds <= {"integer", "number"}:
        return "number"
    return "mixed"


_KINDS = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class SchemaBuilder:
    """Feed it every record (`add`), then read `columns()`."""

    def __init__(self) -> None:
        self.rows = 0
        self._columns: dict[str, list[Any]] = {}
        """name -> [kinds seen (a set), times present, nulls among them]"""

    def add(self, record: dict[str, Any]) -> None:
        self.rows += 1
        columns = self._columns
        for key, value in record.items():
            column = columns.get(key)
            if column is None:
                if len(columns) >= MAX_COLUMNS:
                    continue
                column = columns[key] = [set(), 0, 0]
            column[1] += 1
            if value is None:
                column[2] += 1
            else:
                column[0].add(_KINDS.get(type(value)) or kind(value))

    def columns(self) -> list[dict[str, Any]]:
        return [
            {"name": key, "type": merged(kinds), "nulls": nulls + self.rows - present}
            for key, (kinds, present, nulls) in self._columns.items()
        ]

    def schema(self) -> dict[str, Any]:
        return {"columns": self.columns()}
