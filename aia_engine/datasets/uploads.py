"""Storing a dataset from a byte stream (an HTTP body, a file): parsed as it arrives, counted
against AIA_DATASET_MAX_BYTES, written to PostgreSQL in COPY batches in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aia_engine.datasets.files import CountedBytes, file_chunks, format_of, parse_records
from aia_engine.datasets.store import check_name, store_records
from aia_engine.db.session import Sessions
from aia_engine.settings import Settings


def store_stream(
    sessions: Sessions,
    name: str,
    *,
    chunks: Iterable[bytes],
    fmt: str,
    settings: Settings,
    client_id: str | None = None,
    replace: bool = False,
    keep_strings: bool = False,
) -> dict[str, Any]:
    """Store the records in `chunks` (format `fmt`: csv, jsonl or json) as dataset `name`."""
    check_name(name)
    source = CountedBytes(chunks, settings.dataset_max_bytes, settings.dataset_max_record_bytes)
    return store_records(
        sessions,
        name,
        parse_records(source, fmt, keep_strings=keep_strings),
        fmt=fmt,
        settings=settings,
        client_id=client_id,
        replace=replace,
        size=lambda: source.size,
    )


def store_file(
    sessions: Sessions,
    name: str,
    path: Path,
    *,
    settings: Settings,
    fmt: str | None = None,
    client_id: str | None = None,
    replace: bool = False,
    keep_strings: bool = False,
) -> dict[str, Any]:
    """`store_stream` over the file at `path` (format from `fmt` or its suffix)."""
    return store_stream(
        sessions,
        name,
        chunks=file_chunks(path),
        fmt=format_of(path, fmt),
        settings=settings,
        client_id=client_id,
        replace=replace,
        keep_strings=keep_strings,
    )
