"""Reading a dataset file as it streams in: CSV with a header row, JSON Lines, or JSON (an
array of objects, or `{"records": [...]}`). Records come out one at a time; the bytes are read
in chunks and counted, so no file is ever held whole and nothing past the size limit is read.

CSV cells become numbers when they read as one (`12`, `-3.5`, `1e3`; not `007`, which stays
text, nor one too large for a floating-point number), empty cells become null, and everything
else stays text (`keep_strings` keeps all text). Anything that cannot become records raises
`InvalidDatasetFile` (E064) saying what and where; a record past `max_record` bytes raises
`DatasetTooLarge` (E065) while it is being read, so one huge record cannot fill the memory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
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
MAX_INT = (1 << 63) - 1
"""Integers beyond 64 bits are refused in every format (yajl, which parses JSON arrays, cannot
read them; CSV keeps a longer run of digits as a number or, past a float's range, as text)."""
JSON_SLACK = 4 * CHUNK
"""Bytes a JSON array's parser may have read ahead of the record it builds: its record limit
is checked on the bytes read since the previous record, less this."""
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_NON_FINITE = re.compile(r'(?<![\w"])-?(NaN|Infinity)\b')
_LEADING_ZERO = re.compile(r"^[+-]?0[0-9]")  # an identifier such as a ZIP code: text


def bad(what: str, reason: str | None = None, **where: Any) -> InvalidDatasetFile:
    """E064 saying `what` is wrong; `details.issue` is `reason` (a short, stable phrase such
    as "NaN or infinity") where one is given, else `what`."""
    return InvalidDatasetFile(
        f"the dataset file is not usable: {what}; nothing was stored",
        field="body",
        issue=reason or what,
        **where,
    )


NAN = "NaN or infinity"
OUT_OF_RANGE = "number out of range"
DEEP = "nested too deeply"
SURROGATE = "lone surrogate"
NOT_UTF8 = "not UTF-8"
NUL = "NUL character"


class _Refused(ValueError):
    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class CountedBytes(io.RawIOBase):
    """A readable stream over byte chunks that counts what it reads and refuses to read past
    `max_bytes` (DatasetTooLarge), so a limit holds however the body arrives."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int, max_record: int = 1 << 20) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self.max_bytes = max_bytes
        self.max_record = max_record
        """Bytes one record may take (AIA_DATASET_MAX_RECORD_BYTES)."""
        self.size = 0
        self.lines = 0
        """Newlines read so far (read ahead of the parser: an error is at or before it)."""
        self.handed = 0
        """Bytes handed to the parser so far."""
        self.record_start: int | None = None
        """`handed` when the current record began; set, reads past it are limited."""
        self.watch: Callable[[bytes], None] | None = None
        """Called with each chunk as it arrives (a check the parser cannot make)."""

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
            if self.watch is not None:
                self.watch(chunk)
            self._pending = chunk
        start = self.record_start
        if start is not None and self.handed - start > self.max_record + JSON_SLACK:
            raise record_too_large(self.max_record)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.handed += n
        return n


def too_large(max_bytes: int) -> DatasetTooLarge:
    return DatasetTooLarge(
        f"the dataset passes {max_bytes} bytes (AIA_DATASET_MAX_BYTES); nothing was stored",
        limit=max_bytes,
        setting="AIA_DATASET_MAX_BYTES",
    )


def record_too_large(max_record: int, **where: Any) -> DatasetTooLarge:
    place = "".join(f" at {k} {v}" for k, v in where.items())
    return DatasetTooLarge(
        f"a record{place} passes {max_record} bytes (AIA_DATASET_MAX_RECORD_BYTES); nothing "
        "was stored",
        limit=max_record,
        setting="AIA_DATASET_MAX_RECORD_BYTES",
        **where,
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
    raise _Refused(f"{name} is not a JSON number a dataset may hold", NAN)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text[:40]} is out of the range of a floating-point number", OUT_OF_RANGE)
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _json(stream: io.BufferedReader[CountedBytes]) -> Iterator[dict[str, Any]]:
    source = stream.raw
    surrogates = source.watch = _LoneSurrogates()  # before anything is read
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
    source.record_start = source.handed
    try:
        for index, item in enumerate(ijson.items(stream, prefix, use_float=True)):
            if not isinstance(item, dict):
                raise bad(
                    f"item {index} is {_kind(item)}; every record must be a JSON object",
                    item=index,
                )
            source.record_start = source.handed
            yield item
        surrogates.close()
    except UnicodeDecodeError as exc:  # yajl hands on bytes that are not UTF-8
        surrogates.close()  # a lone surrogate escape, said as JSON Lines says it
        line = stream.raw.lines + 1
        raise bad(
            f"not UTF-8 text ({exc.reason}) in item {index + 1} (at or before line {line})",
            NOT_UTF8,
            item=index + 1,
            line=line,
        ) from exc
    except ijson.JSONError as exc:
        text = exc.args[0] if exc.args else exc
        first_line = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        line = stream.raw.lines + 1
        said = [part.strip() for part in first_line.splitlines() if part.strip()] or ["error"]
        near = f", near {said[1][:80]!r}" if len(said) > 2 else ""  # yajl shows the spot
        reason = _yajl_reason(first_line)
        if reason == OUT_OF_RANGE:
            said[0] = "a number beyond 64-bit integers or floating-point numbers"
        raise bad(
            f"not valid JSON in item {index + 1} (at or before line {line}): {said[0]}{near}",
            reason,
            item=index + 1,
            line=line,
        ) from exc
    if index < 0 and prefix == "records.item":
        raise bad('a JSON object must hold the records as "records": [...]')


def _int64(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_INT:
        raise _Refused("an integer beyond 64 bits", OUT_OF_RANGE)
    return value


def _lines(stream: io.BufferedReader[CountedBytes]) -> Iterator[tuple[int, bytes]]:
    """The file's lines (numbered from 1, line endings kept), none read past the record limit."""
    limit = stream.raw.max_record
    number = 0
    while raw := stream.readline(limit + 2):
        number += 1
        if len(raw) > limit and len(raw.rstrip(b"\r\n")) > limit:
            raise record_too_large(limit, line=number)
        yield number, raw


def _yajl_reason(message: str) -> str | None:
    """NAN, OUT_OF_RANGE or NOT_UTF8 for yajl's errors that mean them, as JSON Lines names them. yajl
    shows the text near the error on its second line and marks the spot with `^` on the
    third."""
    if "overflow" in message.splitlines()[0]:
        return OUT_OF_RANGE
    if "invalid bytes in UTF8" in message.splitlines()[0]:
        return NOT_UTF8
    lines = message.splitlines()
    if len(lines) >= 3 and "^" in lines[2]:
        spot = lines[2].index("^")
        if _NON_FINITE.search(lines[1][max(0, spot - 12) : spot + 12]):
            return NAN
    return None


def _json_lines(stream: io.BufferedReader[CountedBytes]) -> Iterator[dict[str, Any]]:
    for number, raw in _lines(stream):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise bad(
                f"line {number} is not UTF-8 text ({exc.reason})", NOT_UTF8, line=number
            ) from exc
        if not line.strip():
            continue
        try:
            value = json.loads(
                line, parse_constant=_constant, parse_float=_finite, parse_int=_int64
            )
        except json.JSONDecodeError as exc:
            raise bad(f"line {number} is not valid JSON: {exc.msg}", line=number) from exc
        except RecursionError as exc:
            raise bad(f"line {number} is nested too deeply", DEEP, line=number) from exc
        except _Refused as exc:
            raise bad(f"line {number}: {exc}", exc.reason, line=number) from exc
        if not isinstance(value, dict):
            raise bad(
                f"line {number} is {_kind(value)}; every record must be a JSON object",
                line=number,
            )
        yield value


def _csv_lines(stream: io.BufferedReader[CountedBytes], at: list[int]) -> Iterator[str]:
    """The CSV file's lines as text, each decoded on its own (so an error names its line);
    `at` holds [the line number, the bytes of the record being read so far], which the reader
    resets when a record is complete, so a quoted cell over many lines is limited too."""
    limit = stream.raw.max_record
    readline = stream.readline
    number = 0
    while raw := readline(limit + 2):
        number += 1
        at[0] = number
        at[1] += len(raw)
        if at[1] > limit and at[1] - (len(raw) - len(raw.rstrip(b"\r\n"))) > limit:
            raise record_too_large(limit, line=number)  # its last line ending aside
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise bad(
                f"line {number} is not UTF-8 text ({exc.reason})", NOT_UTF8, line=number
            ) from exc
        if "\x00" in line:
            raise bad(f"line {number} holds a NUL character", NUL, line=number)
        yield line


def _csv(stream: io.BufferedReader[CountedBytes], keep_strings: bool) -> Iterator[dict[str, Any]]:
    at = [0, 0]
    rows = csv.reader(_csv_lines(stream, at))
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
            at[1] = 0
            if (not row or not row[0].strip()) and not any(c.strip() for c in row):
                continue  # a blank line (or a row of empty cells) is no record
            if len(row) != width:
                raise bad(
                    f"CSV line {at[0]} has {len(row)} cells; the header has {width}",
                    line=at[0],
                )
            yield dict(zip(names, map(cell, row), strict=True))
    except csv.Error as exc:
        raise bad(f"CSV line {at[0]}: {exc}", line=at[0]) from exc


class _LoneSurrogates:
    """Refuses a JSON text escaping half a surrogate pair (`"\\ud800"` alone), which yajl
    would silently turn into `?`: JSON Lines and JSON arrays refuse it alike. Fed the raw
    chunks; an escape cut between two chunks is judged once it is whole."""

    _ESCAPE = re.compile(
        rb"(?<!\\)(?:\\\\)*\\u[dD]([0-9a-fA-F])[0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    )
    _KEEP = 12
    """Bytes of a pair of escapes: a match starting this near the end may be incomplete."""

    def __init__(self) -> None:
        self._carry = b""

    def __call__(self, chunk: bytes) -> None:
        window = self._carry + chunk
        if b"\\u" not in window:
            self._carry = window[-self._KEEP :]
            return
        cut = max(0, len(window) - self._KEEP)
        floor = max(0, cut - 4096)  # do not start inside a run of backslashes
        while cut > floor and window[cut - 1 : cut] == b"\\":
            cut -= 1
        self._carry = window[self._check(window, cut) :]

    def close(self) -> None:
        self._check(self._carry, len(self._carry))

    def _check(self, window: bytes, before: int) -> int:
        """Judge the escapes starting before `before`; where the rest begins."""
        end = before
        for match in self._ESCAPE.finditer(window):
            if match.start() >= before:
                break
            if match.group(1) not in b"89abAB" or match.group(2) is None:
                raise bad(
                    "a string holds a lone surrogate (half of a \\uD800-\\uDFFF pair)", SURROGATE
                )
            end = max(end, match.end())
        return end


_MAY_BE_NUMBER = frozenset("0123456789+-. \t")


def _cell(text: str) -> Any:
    if not text:
        return None
    if text[0] not in _MAY_BE_NUMBER:
        return text  # most text cells: no regex at all
    if text.isdigit() and text.isascii():  # the common integer, without a regex
        if text[0] == "0" and len(text) > 1:
            return text  # an identifier such as a ZIP code
        if len(text) <= 18:
            return int(text)
        number = float(text)
        return number if math.isfinite(number) else text
    value = text.strip()
    if not value:
        return None
    if not _NUMBER.match(value) or _LEADING_ZERO.match(value):
        return text  # one regex for most text cells
    if len(value) <= 18 and value.lstrip("+-").isdigit():
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else text
