"""`client.datasets`: upload a file (streamed from disk), list, read and delete datasets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from aia_client import models
from aia_client._sync.resources._base import SyncResource
from aia_client._sync.resources.tasks import _segment

CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "json": "application/json"}
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
CHUNK = 1 << 20


def file_format(path: Path, fmt: str | None = None) -> str:
    """The dataset format of `path`: `fmt`, else by its suffix; ValueError when neither."""
    found = fmt or SUFFIXES.get(path.suffix.lower())
    if found not in CONTENT_TYPES:
        raise ValueError(
            f"{path}: cannot tell the format from {path.suffix or 'no suffix'!r}; "
            "give it: csv, jsonl or json"
        )
    return found


class SyncDatasets(SyncResource):
    def upload(
        self,
        path: str | Path,
        name: str,
        *,
        format: str | None = None,
        replace: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> models.DatasetView:
        """Send the file at `path` as dataset `name` (CSV, JSON Lines or a JSON array), streamed
        from disk; `progress(sent, total)` is called as it goes. A rate limit is waited out;
        a cut connection raises (the server stored nothing of a cut upload: send it again)."""
        path = Path(path)
        content_type = CONTENT_TYPES[file_format(path, format)]
        total = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if progress is not None:
                        progress(sent, total)

        response = self._transport.request(
            "POST",
            "/datasets",
            params={"name": name, **({"replace": "true"} if replace else {})},
            headers={"Content-Type": content_type, "Content-Length": str(total)},
            content=chunks,
            idempotent=False,
        )
        return models.DatasetView.model_validate_json(response.content)

    def list(self) -> models.DatasetList:
        return self._call(models.DatasetList, "GET", "/datasets")

    def get(self, ref: str) -> models.DatasetView:
        """A dataset by id (`ds_...`) or name."""
        return self._call(models.DatasetView, "GET", f"/datasets/{_segment(ref)}")

    def delete(self, ref: str) -> None:
        self._transport.request("DELETE", f"/datasets/{_segment(ref)}", idempotent=True)
