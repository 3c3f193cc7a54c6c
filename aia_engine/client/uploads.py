"""Uploading a dataset file through the HTTP API (`POST /datasets`), streamed from disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aia_engine.client.http import ApiClient

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "json": "application/json"}
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
CHUNK = 1 << 20


def file_format(path: Path, fmt: str | None) -> str:
    """The dataset format of `path`: `fmt`, else by its suffix; ValueError when neither."""
    found = fmt or SUFFIXES.get(path.suffix.lower())
    if found not in CONTENT_TYPES:
        raise ValueError(
            f"{path}: cannot tell the format from {path.suffix or 'no suffix'!r}; name it with "
            "--format csv|jsonl|json"
        )
    return found


def upload_file(
    api: ApiClient,
    path: Path,
    *,
    name: str,
    fmt: str | None = None,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Send the file at `path` as dataset `name`; the API's view of the stored dataset."""
    content_type = CONTENT_TYPES[file_format(path, fmt)]
    total = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        done = 0
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                done += len(chunk)
                yield chunk
                if progress is not None:
                    progress(done, total)

    params = {"name": name, **({"replace": "true"} if replace else {})}
    answer: dict[str, Any] = api.send_stream(
        "POST",
        "/datasets",
        chunks,
        params=params,
        headers={"Content-Type": content_type, "Content-Length": str(total)},
    )
    return answer
