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


class SchemaBuilder:
    """Feed it every record (`add`), then read `columns()`."""

    def __init__(self) -> None:
        self.rows = 0
        self._kinds: dict[str, set[str]] = {}
        self._present: dict[str, int] = {}
        self._nulls: dict[str, int] = {}

    def add(self, record: dict[str, Any]) -> None:
        self.rows += 1
        for key, value in record.items():
            kinds = self._kinds.get(key)
            if kinds is None:
                if len(self._kinds) >= MAX_COLUMNS:
                    continue
                kinds = self._kinds[key] = set()
                self._present[key] = self._nulls[key] = 0
            self._present[key] += 1
            if value is None:
                self._nulls[key] += 1
            else:
                kinds.add(kind(value))

    def columns(self) -> list[dict[str, Any]]:
        return [
            {
                "name": key,
                "type": merged(kinds),
                "nulls": self._nulls[key] + self.rows - self._present[key],
            }
            for key, kinds in self._kinds.items()
        ]

    def schema(self) -> dict[str, Any]:
        return {"columns": self.columns()}
