"""A stored dataset as a worker reads it: its row count and schema at hand, its records
streamed from PostgreSQL in order, a chunk at a time, never all at once (unless an agent asks
for a list, up to a cap)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aia_engine.db.session import Sessions
from aia_engine.errors import DatasetTooLargeForAgent

CHUNK_ROWS = 5000
"""Rows fetched per round trip of the server-side cursor."""


@dataclass(frozen=True)
class StoredDataset:
    sessions: Sessions
    id: int
    public_id: str
    name: str
    rows: int
    columns: list[dict[str, Any]]
    max_rows: int
    """Most rows `records()` materialises (AIA_DATASET_AGENT_MAX_ROWS)."""

    def __len__(self) -> int:
        return self.rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The records in file order, through a server-side cursor in one transaction (one
        consistent snapshot, even if the dataset is replaced meanwhile)."""
        with self.sessions.begin() as session:
            raw = session.connection().connection.driver_connection
            assert raw is not None
            with raw.cursor(name=f"dataset_{self.id}") as cursor:
                cursor.itersize = CHUNK_ROWS
                cursor.execute(
                    "SELECT record FROM dataset_rows WHERE dataset_id = %s ORDER BY row_no",
                    (self.id,),
                )
                for (record,) in cursor:
                    yield record

    def records(self) -> list[dict[str, Any]]:
        """Every record as a list, for agents that need one; refused past `max_rows`."""
        if self.rows > self.max_rows:
            raise DatasetTooLargeForAgent(
                f"dataset {self.name!r} has {self.rows} records; this agent reads a dataset "
                f"into memory and takes at most {self.max_rows} (AIA_DATASET_AGENT_MAX_ROWS). "
                "data_analysis_agent streams datasets of any size",
                field="requirements.data_source",
                limit=self.max_rows,
                rows=self.rows,
            )
        return list(self)
