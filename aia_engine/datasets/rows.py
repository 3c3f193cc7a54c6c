"""A stored dataset as a worker reads it: its row count and schema at hand, its records
streamed from PostgreSQL in order, a chunk at a time, never all at once (unless an agent asks
for a list, up to a cap).

The count and schema are read when the handle is opened; the records later, in a REPEATABLE
READ transaction that first checks the dataset is still the one opened (same id, same
`updated_at`): a dataset replaced or deleted in between fails the stage (AgentError) instead
of giving records that do not match the count and schema. That transaction stays open while
the agent iterates (for data_analysis_agent, the whole analysis)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aia_engine.db.session import Sessions
from aia_engine.errors import AgentError, DatasetTooLargeForAgent

TOMBSTONE = "(deleted)"
"""The owner of a deleted dataset whose rows are still being purged: no client's id."""
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
    updated_at: datetime | None = None
    """The dataset's `updated_at` when opened: the rows read must be of that version."""

    def __len__(self) -> int:
        return self.rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The records in file order, through a server-side cursor in one REPEATABLE READ
        transaction (one snapshot); AgentError when the dataset is no longer the one opened."""
        with self.sessions.begin() as session:
            connection = session.connection(
                execution_options={"isolation_level": "REPEATABLE READ"}
            )
            raw = connection.connection.driver_connection
            assert raw is not None
            with raw.cursor() as check:
                check.execute(
                    "SELECT updated_at FROM datasets WHERE id = %s AND client_id IS DISTINCT "
                    "FROM %s",
                    (self.id, TOMBSTONE),
                )
                now = check.fetchone()
            if now is None or (self.updated_at is not None and now[0] != self.updated_at):
                raise AgentError(
                    f"dataset {self.name!r} ({self.public_id}) was "
                    f"{'deleted' if now is None else 'replaced'} after the stage opened it; "
                    "run the task again",
                    field="requirements.data_source",
                    dataset=self.public_id,
                )
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
