"""Reading a dataset file: JSON (an array of objects, `{"records": [...]}`, or JSON Lines) or
CSV with a header row. Everything else is refused with a message saying what was wrong.

CSV cells become numbers when they read as one (`12`, `-3.5`, `1e3`; not `007`, which stays
text), empty cells become null, and everything else stays text (`keep_strings` keeps all text).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from aia_engine.errors import InvalidRequest

FORMATS = ("json", "jsonl", "csv")
SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_LEADING_ZERO = re.compile(r"^[+-]?0[0-9]")  # an identifier such as a ZIP code: text


class DatasetFileError(InvalidRequest):
    """Raised when a dataset file cannot become records."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(
            f"{path}: {message}", field="file", issue=message, provided_value=str(path)
        )


def read_records(
    path: Path, *, max_bytes: int, fmt: str | None = None, keep_strings: bool = False
) -> list[dict[str, Any]]:
    """The records in the file at `path` (format from `fmt` or the file's suffix)."""
    fmt = fmt or SUFFIXES.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise DatasetFileError(
            path,
            f"unsupported file type {path.suffix or '(none)'!r}: give JSON (.json: an array of "
            "objects; .jsonl or .ndjson: JSON Lines, one object per line) or CSV (.csv with a "
            "header row), or say which with --format",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetFileError(path, f"cannot read the file ({exc.strerror})") from exc
    if size > max_bytes:
        raise DatasetFileError(
            path,
            f"the file has {size} bytes; a dataset holds at most {max_bytes} "
            "(AIA_DATASET_MAX_BYTES)",
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFileError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if fmt == "csv":
        return _csv(path, text, keep_strings)
    if fmt == "jsonl":
        return _json_lines(path, text)
    return _json(path, text)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number a dataset may hold")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a floating-point number")
    return value


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_constant, parse_float=_finite)


def _json(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        data = _loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several values: JSON Lines in a .json file
            return _json_lines(path, text)
        raise DatasetFileError(path, f"not valid JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise DatasetFileError(path, f"not usable JSON: {exc or 'nested too deeply'}") from exc
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]  # the shipped samples' layout
    if not isinstance(data, list):
        raise DatasetFileError(
            path, f'JSON must be an array of objects (or {{"records": [...]}}), not {_kind(data)}'
        )
    return _objects(path, data, lambda i: f"item {i}")


def _json_lines(path: Path, text: str) -> list[dict[str, Any]]:
    records: list[Any] = []
    numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetFileError(path, f"line {number} is not valid JSON: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:
            raise DatasetFileError(path, f"line {number}: {exc or 'nested too deeply'}") from exc
        numbers.append(number)
    return _objects(path, records, lambda i: f"line {numbers[i]}")


def _objects(path: Path, items: list[Any], where: Any) -> list[dict[str, Any]]:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DatasetFileError(
                path, f"{where(index)} is {_kind(item)}; every record must be a JSON object"
            )
    return items


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _csv(path: Path, text: str, keep_strings: bool) -> list[dict[str, Any]]:
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows, None)
        if header is None or not any(h.strip() for h in header):
            raise DatasetFileError(path, "CSV needs a header row naming the columns")
        names = [h.strip() for h in header]
        if "" in names or len(set(names)) != len(names):
            raise DatasetFileError(
                path, "every CSV header cell must name a column, once: " + ", ".join(names)
            )
        records: list[dict[str, Any]] = []
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise DatasetFileError(
                    path,
                    f"CSV line {rows.line_num} has {len(row)} cells; the header has {len(names)}",
                )
            records.append(
                {n: (c if keep_strings else _cell(c)) for n, c in zip(names, row, strict=True)}
            )
    except csv.Error as exc:
        raise DatasetFileError(path, f"CSV line {rows.line_num}: {exc}") from exc
    return records


def _cell(text: str) -> Any:
    value = text.strip()
    if not value:
        return None
    if _LEADING_ZERO.match(value):
        return text
    if _INT.match(value) and len(value) <= 18:
        return int(value)
    if _FLOAT.match(value):
        number = float(value)
        if math.isfinite(number):
            return number
    return text
