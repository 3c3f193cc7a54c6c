"""Reading a dataset file as it streams in: CSV with a header row, JSON Lines, or JSON (an
array of objects, or `{"records": [...]}`). Records come out one at a time; the bytes are read
in chunks and counted, so no file is ever held whole and nothing past the size limit is read.

CSV cells become numbers when they read as one (`12`, `-3.5`, `1e3`; not `007`, which stays
text), empty cells become null, and everything else stays text (`keep_strings` keeps all text).
Anything that cannot become records raises `InvalidDatasetFile` (E064) saying what and where.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ijson  # type: ignore[import-untyped]

from aia_engine.errors import DatasetTooLarge, InvalidDatasetFile

FORMATS = ("json", "jsonl", "csv")
SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
MEDIA_TYPES = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json": "json",
}
"""Content types POST /datasets takes, and the format each means."""
CHUNK = 1 << 16
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_LEADING_ZERO = re.compile(r"^[+-]?0[0-9]")  # an identifier such as a ZIP code: text


def bad(issue: str, **where: Any) -> InvalidDatasetFile:
    return InvalidDatasetFile(
        f"the dataset file is not usable: {issue}; nothing was stored",
        field="body",
        issue=issue,
        **where,
    )


class CountedBytes(io.RawIOBase):
    """A readable stream over byte chunks that counts what it reads and refuses to read past
    `max_bytes` (DatasetTooLarge), so a limit holds however the body arrives."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self.max_bytes = max_bytes
        self.size = 0
        self.lines = 0
        """Newlines read so far (read ahead of the parser: an error is at or before it)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise too_large(self.max_bytes)
            self.lines += chunk.count(b"\n")
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def too_large(max_bytes: int) -> DatasetTooLarge:
    return DatasetTooLarge(
        f"the dataset passes {max_bytes} bytes (AIA_DATASET_MAX_BYTES); nothing was stored",
        limit=max_bytes,
        setting="AIA_DATASET_MAX_BYTES",
    )


def file_chunks(path: Path, size: int = CHUNK) -> Iterator[bytes]:
    """The bytes of the file at `path`, in chunks."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidDatasetFile(
            f"{path}: cannot read the file ({exc.strerror})",
            issue="unreadable file",
            field="file",
            provided_value=str(path),
        ) from exc
    with handle:
        while chunk := handle.read(size):
            yield chunk


def format_of(path: Path, fmt: str | None) -> str:
    found = fmt or SUFFIXES.get(path.suffix.lower())
    if found not in FORMATS:
        raise InvalidDatasetFile(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}: give JSON (.json: an "
            "array of objects; .jsonl or .ndjson: JSON Lines, one object per line) or CSV (.csv "
            "with a header row), or say which with --format",
            issue="unsupported file type",
            field="file",
            provided_value=str(path),
        )
    return found


def parse_records(
    source: CountedBytes, fmt: str, *, keep_strings: bool = False
) -> Iterator[dict[str, Any]]:
    """The records in `source`, one at a time. Raises InvalidDatasetFile / DatasetTooLarge."""
    buffered = io.BufferedReader(source, CHUNK)
    if fmt == "csv":
        return _csv(buffered, keep_strings)
    if fmt == "jsonl":
        return _json_lines(buffered)
    return _json(buffered)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number a dataset may hold")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a floating-point number")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _json(stream: io.BufferedReader[CountedBytes]) -> Iterator[dict[str, Any]]:
    head = stream.peek(4)[:3]
    if head.startswith(b"\xef\xbb\xbf"):
        stream.read(3)  # a UTF-8 byte order mark
    while (first := stream.peek(1)[:1]) and first.isspace():
        stream.read(1)
    if first not in (b"[", b"{"):
        what = "nothing" if not first else f"a value starting with {first!r}"
        raise bad(f'JSON must be an array of objects (or {{"records": [...]}}), not {what}')
    prefix = "item" if first == b"[" else "records.item"
    index = -1
    try:
        for index, item in enumerate(ijson.items(stream, prefix, use_float=True)):
            if not isinstance(item, dict):
                raise bad(
                    f"item {index} is {_kind(item)}; every record must be a JSON object",
                    item=index,
                )
            yield item
    except ijson.JSONError as exc:
        text = exc.args[0] if exc.args else exc
        first_line = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        line = stream.raw.lines + 1
        said = [part.strip() for part in first_line.splitlines() if part.strip()] or ["error"]
        near = f", near {said[1][:80]!r}" if len(said) > 2 else ""  # yajl shows the spot
        raise bad(
            f"not valid JSON in item {index + 1} (at or before line {line}): {said[0]}{near}",
            item=index + 1,
            line=line,
        ) from exc
    if index < 0 and prefix == "records.item":
        raise bad('a JSON object must hold the records as "records": [...]')


def _json_lines(stream: io.BufferedReader[CountedBytes]) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise bad(f"line {number} is not UTF-8 text ({exc.reason})", line=number) from exc
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_constant=_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            raise bad(f"line {number} is not valid JSON: {exc.msg}", line=number) from exc
        except (ValueError, RecursionError) as exc:
            raise bad(f"line {number}: {exc or 'nested too deeply'}", line=number) from exc
        if not isinstance(value, dict):
            raise bad(
                f"line {number} is {_kind(value)}; every record must be a JSON object",
                line=number,
            )
        yield value


def _checked_lines(text: io.TextIOWrapper, where: list[int]) -> Iterator[str]:
    number = 0
    try:
        for line in text:
            number += 1
            where[0] = number
            if "\x00" in line:
                raise bad(f"line {number} holds a NUL character", line=number)
            yield line
    except UnicodeDecodeError as exc:
        raise bad(f"not UTF-8 text ({exc.reason}) after line {number}", line=number + 1) from exc


def _csv(stream: io.BufferedReader[CountedBytes], keep_strings: bool) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    where = [0]
    rows = csv.reader(_checked_lines(text, where))
    try:
        header = next(rows, None)
        if header is None or not any(h.strip() for h in header):
            raise bad("CSV needs a header row naming the columns", line=1)
        names = [h.strip() for h in header]
        if "" in names or len(set(names)) != len(names):
            raise bad("every CSV header cell must name a column, once: " + ", ".join(names))
        width = len(names)
        cell = str if keep_strings else _cell
        for row in rows:
            if (not row or not row[0].strip()) and not any(c.strip() for c in row):
                continue  # a blank line (or a row of empty cells) is no record
            if len(row) != width:
                raise bad(
                    f"CSV line {rows.line_num} has {len(row)} cells; the header has {width}",
                    line=rows.line_num,
                )
            yield dict(zip(names, map(cell, row), strict=True))
    except csv.Error as exc:
        raise bad(f"CSV line {where[0]}: {exc}", line=where[0]) from exc


_MAY_BE_NUMBER = frozenset("0123456789+-. \t")


def _cell(text: str) -> Any:
    if not text:
        return None
    if text[0] not in _MAY_BE_NUMBER:
        return text  # most text cells: no regex at all
    if text.isdigit() and text.isascii():  # the common integer, without a regex
        if text[0] == "0" and len(text) > 1:
            return text  # an identifier such as a ZIP code
        return int(text) if len(text) <= 18 else float(text)
    value = text.strip()
    if not value:
        return None
    if not _NUMBER.match(value) or _LEADING_ZERO.match(value):
        return text  # one regex for most text cells
    if len(value) <= 18 and value.lstrip("+-").isdigit():
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else text
