"""Named datasets in PostgreSQL: store (streamed in with COPY), list, get, delete, and the
tenancy-aware lookups that submissions (does it exist?) and workers (its rows) make.

A dataset row holds the metadata (public id `ds_...`, schema, counts); its records are rows of
`dataset_rows`, numbered in file order. A dataset with `client_id` NULL is shared (the
operator's); one with a client id is that client's own. A client sees its own datasets, the
shared ones and the shipped samples, its own first; it changes only its own.

Writers never wait for each other: an upload, replace or delete first takes a transaction-level
advisory lock on (owner, name) without waiting, and answers 409 "upload in progress" when
another holds it. A delete only renames the dataset to a tombstone owned by nobody (one quick
UPDATE); `purge_deleted` removes its rows afterwards, in chunks.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from aia_engine.clock import utcnow
from aia_engine.datasets import SAMPLE_PREFIX, sample_name, sample_names
from aia_engine.datasets.files import DEEP, NAN, NUL, SURROGATE, bad
from aia_engine.datasets.rows import TOMBSTONE, StoredDataset
from aia_engine.datasets.samples import sample_view
from aia_engine.datasets.schema import SchemaBuilder
from aia_engine.db.models import Dataset, DatasetRow, Task
from aia_engine.db.session import Sessions
from aia_engine.errors import (
    Conflict,
    DatasetReadOnly,
    DatasetTooLarge,
    InvalidRequest,
    NotFound,
)
from aia_engine.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
PUBLIC_ID = re.compile(r"^ds_[0-9a-f]{24}$")
BATCH_ROWS = 5000
BATCH_BYTES = 4 << 20
"""Rows written to the COPY stream at a time while a dataset streams in: 5,000, or fewer when
they reach 4 MiB."""
PURGE_ROWS = 50_000
"""Rows one purge statement deletes."""
LOCK_TIMEOUT = "5s"
"""Longest wait for a row lock in a dataset write (a backstop: writers try locks first)."""
COPY_ROWS = "COPY dataset_rows (dataset_id, row_no, record) FROM STDIN"
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
"""One encoder for every record (json.dumps with options builds a new one per call)."""


class DatasetNotFound(NotFound):
    def __init__(self, name: str, client_id: str | None) -> None:
        owner = f" of client {client_id}" if client_id else " (shared)"
        super().__init__(f"no dataset {name[:200]!r}{owner}", name=name[:200])


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidRequest(
            f"dataset name {name[:200]!r} is not valid: 1-100 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit ({SAMPLE_PREFIX!r} names the shipped samples)",
            field="name",
            issue="invalid name",
            provided_value=name[:200],
        )
    return name


def store_records(
    sessions: Sessions,
    name: str,
    records: Iterable[dict[str, Any]],
    *,
    fmt: str,
    settings: Settings,
    client_id: str | None = None,
    replace: bool = False,
    size: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Store `records` as dataset `name` (shared, or `client_id`'s own), streaming them into
    `dataset_rows` with COPY in batches, all in one transaction: an error anywhere (a bad
    record, a limit, a cut upload) leaves nothing. `size` gives the bytes read (the file's
    size); without it, the size of the records as JSON. An existing name needs `replace`."""
    check_name(name)
    builder = SchemaBuilder()
    encoded = 0
    with sessions.begin() as session:
        # Backstops: a stuck upload ends instead of holding its connection and locks.
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        idle_ms = int(settings.dataset_upload_idle_s * 1000) + 30_000
        session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {idle_ms}"))
        statement_ms = int(settings.dataset_upload_timeout_s * 1000) + 60_000
        session.execute(text(f"SET LOCAL statement_timeout = {statement_ms}"))
        row = _claim(session, name, client_id, replace)
        raw = session.connection().connection.driver_connection
        assert raw is not None
        batch: list[bytes] = []
        batch_bytes = 0
        prefix = f"{row.id}\t"
        count = 0
        # One COPY for the whole stream, fed a batch at a time: PostgreSQL stores a batch
        # while the next one is parsed. An exception inside aborts the COPY (CopyFail).
        with raw.cursor() as cursor, cursor.copy(COPY_ROWS) as copy:
            for count, record in enumerate(records, start=1):
                if count > settings.dataset_max_records:
                    raise DatasetTooLarge(
                        f"dataset {name!r} has more than {settings.dataset_max_records} "
                        "records (AIA_DATASET_MAX_RECORDS); nothing was stored",
                        limit=settings.dataset_max_records,
                        setting="AIA_DATASET_MAX_RECORDS",
                    )
                builder.add(record)
                line = _copy_line(prefix, count, record)
                encoded += len(line)
                batch_bytes += len(line)
                batch.append(line)
                if len(batch) >= BATCH_ROWS or batch_bytes >= BATCH_BYTES:
                    copy.write(b"".join(batch))
                    batch.clear()
                    batch_bytes = 0
            if count == 0:
                raise bad("it holds no records")
            copy.write(b"".join(batch))
        schema = builder.schema()
        row.record_count, row.size_bytes = count, size() if size else encoded
        row.schema, row.format, row.updated_at = schema, fmt, utcnow()
        row.fields = [c["name"] for c in schema["columns"]]
        session.flush()
        return view(row, client_id)


def _hold_name(session: Session, name: str, client_id: str | None) -> None:
    """Take the write lock of (owner, name) for this transaction, or raise Conflict at once
    when another upload, replace or delete holds it."""
    key = f"aia.dataset:{client_id or ''}:{name}"
    taken = session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtextextended(key, 0))))
    if not taken:
        raise Conflict(
            f"dataset {name!r}: upload in progress (another upload, replace or delete of this "
            "name is running); retry when it is done",
            name=name,
            issue="upload in progress",
        )


def _claim(session: Session, name: str, client_id: str | None, replace: bool) -> Dataset:
    """The dataset row to fill: the existing one emptied (with `replace`), or a new one."""
    _hold_name(session, name, client_id)
    try:
        found: Dataset | None = session.scalars(
            _owned(name, client_id).with_for_update(nowait=True)
        ).one_or_none()
    except OperationalError as exc:  # a row lock taken by a writer without the name lock
        raise Conflict(f"dataset {name!r}: upload in progress", name=name) from exc
    if found is None and replace and client_id is not None and _shared(session, name):
        raise DatasetReadOnly(
            f"dataset {name!r} is a shared dataset: every client may read it, none may "
            "replace it; upload under another name (or without replace=true, as your own "
            "dataset of that name, which then comes first for you)",
            name=name,
        )
    if found is not None:
        if not replace:
            raise Conflict(
                f"dataset {name!r} already exists; send it with replace=true (HTTP) or "
                "--replace (CLI) to replace its records",
                name=name,
            )
        session.execute(delete(DatasetRow).where(DatasetRow.dataset_id == found.id))
        return found
    now = utcnow()
    row = Dataset(
        name=name,
        client_id=client_id,
        public_id="ds_" + secrets.token_hex(12),
        schema={"columns": []},
        format="",
        record_count=0,
        size_bytes=0,
        fields=[],
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # the same name, stored meanwhile by another upload
        raise Conflict(f"dataset {name!r} already exists (stored just now)", name=name) from exc
    return row


def _copy_line(prefix: str, number: int, record: dict[str, Any]) -> bytes:
    """One row of COPY's text format: dataset id, row number, the record as JSON."""
    try:
        text = _encode(record)
    except ValueError as exc:
        raise bad(f"record {number} holds NaN or infinity, which JSON cannot carry", NAN) from exc
    except RecursionError as exc:
        raise bad(f"record {number} is nested too deeply", DEEP, record=number) from exc
    if "\\u0000" in text and _NUL.search(text):
        raise bad(
            f"record {number} holds a NUL character (\\u0000), which PostgreSQL cannot store", NUL
        )
    # JSON escapes every control character, so a backslash is the one byte COPY's text
    # format still needs escaped.
    try:
        return f"{prefix}{number}\t{text.replace(chr(92), chr(92) * 2)}\n".encode()
    except UnicodeEncodeError as exc:
        raise bad(f"record {number} holds a lone surrogate, which is not text", SURROGATE) from exc


def add_dataset(
    sessions: Sessions,
    name: str,
    records: Iterable[dict[str, Any]],
    *,
    settings: Settings,
    client_id: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Store records (tests, scripts): `store_records` with format `records`."""
    return store_records(
        sessions,
        name,
        records,
        fmt="records",
        settings=settings,
        client_id=client_id,
        replace=replace,
    )


def view(row: Dataset, client_id: str | None) -> dict[str, Any]:
    """What the API and the CLI show of a stored dataset (never its records)."""
    shared = row.client_id is None
    return {
        "id": row.public_id,
        "name": row.name,
        "client_id": row.client_id,
        "rows": row.record_count,
        "size_bytes": row.size_bytes,
        "format": row.format,
        "columns": list(row.schema.get("columns", [])),
        "shared": shared,
        "read_only": shared and client_id is not None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def list_datasets(
    sessions: Sessions, *, client_id: str | None = None, every: bool = False
) -> list[dict[str, Any]]:
    """The shared datasets and (with `client_id`) that client's own; `every`: all clients'."""
    query = select(Dataset).order_by(Dataset.name, Dataset.client_id.nulls_first())
    if not every:
        query = query.where(_visible(client_id))
    else:
        query = query.where(Dataset.client_id.is_distinct_from(TOMBSTONE))
    with sessions.begin() as session:
        return [view(row, client_id) for row in session.scalars(query)]


def list_for_client(sessions: Sessions, client_id: str) -> list[dict[str, Any]]:
    """A client's own datasets, then the shared ones, then the samples (read-only)."""
    mine = list_datasets(sessions, client_id=client_id)
    mine.sort(key=lambda d: (d["shared"], d["name"]))
    return [*mine, *(sample_view(n) for n in sample_names())]


def get_for_client(sessions: Sessions, ref: str, client_id: str) -> dict[str, Any]:
    """The dataset `ref` (a `ds_` id, a name or `sample:NAME`) as `client_id` sees it."""
    with sessions.begin() as session:
        row = resolve(session, ref, client_id)
        if row is not None:
            return view(row, client_id)
    sample = sample_name(ref)
    if sample is None:
        raise DatasetNotFound(ref, client_id)
    return sample_view(sample)


def _shared(session: Session, name: str) -> bool:
    query = select(Dataset.id).where(Dataset.name == name, Dataset.client_id.is_(None))
    return session.scalar(query) is not None


def _bury(session: Session, row: Dataset) -> None:
    """Make `row` invisible at once: renamed to a tombstone no client owns (its name freed),
    its rows left to `purge_deleted`."""
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    _hold_name(session, row.name, row.client_id)
    session.execute(
        update(Dataset)
        .where(Dataset.id == row.id)
        .values(name=f"deleted:{row.id}", client_id=TOMBSTONE, updated_at=utcnow())
    )


def purge_deleted(sessions: Sessions, *, chunk: int = PURGE_ROWS) -> int:
    """Remove the rows of deleted datasets, `chunk` rows per transaction, then the datasets;
    how many datasets went. Safe to run in several places at once."""
    with sessions.begin() as session:
        buried = session.scalars(select(Dataset.id).where(Dataset.client_id == TOMBSTONE)).all()
    for dataset_id in buried:
        while True:
            with sessions.begin() as session:
                low = session.scalar(
                    select(func.min(DatasetRow.row_no)).where(DatasetRow.dataset_id == dataset_id)
                )
                if low is None:
                    session.execute(delete(Dataset).where(Dataset.id == dataset_id))
                    break
                session.execute(
                    delete(DatasetRow).where(
                        DatasetRow.dataset_id == dataset_id, DatasetRow.row_no < low + chunk
                    )
                )
    return len(buried)


def delete_for_client(sessions: Sessions, ref: str, client_id: str) -> None:
    """Delete `client_id`'s own dataset `ref` (made invisible at once; `purge_deleted` removes
    its rows); a shared dataset or a sample is read-only."""
    with sessions.begin() as session:
        row = resolve(session, ref, client_id)
        if row is not None and row.client_id == client_id:
            _bury(session, row)
            return
    if row is not None or sample_name(ref) is not None:
        what = "a shared dataset" if row is not None else "a shipped sample"
        raise DatasetReadOnly(
            f"dataset {ref[:200]!r} is {what}: every client may read it, none may delete it",
            name=ref[:200],
        )
    raise DatasetNotFound(ref, client_id)


def delete_dataset(sessions: Sessions, name: str, *, client_id: str | None = None) -> None:
    """The operator's delete: the shared dataset `name`, or `client_id`'s own (its rows purged
    before it returns)."""
    with sessions.begin() as session:
        row = session.scalars(_owned(name, client_id)).one_or_none()
        if row is None:
            raise DatasetNotFound(name, client_id)
        _bury(session, row)
    purge_deleted(sessions)


def resolve(session: Session, ref: str, client_id: Any) -> Dataset | None:
    """The stored dataset `ref` names for `client_id` (a value or a SQL expression): a `ds_`
    id of its own or a shared one; or a name, its own first, then a shared one."""
    if PUBLIC_ID.fullmatch(ref):
        match = Dataset.public_id == ref
    elif NAME.fullmatch(ref):
        match = Dataset.name == ref
    else:
        return None  # `sample:X`, or nothing a dataset can be called (nor a NUL for PostgreSQL)
    query = (
        select(Dataset)
        .where(match, _visible(client_id))
        .order_by(Dataset.client_id.is_(None))
        .limit(1)
    )
    return session.scalars(query).one_or_none()


def visible_names(session: Session, names: list[str], client_id: str | None) -> set[str]:
    """Which of `names` name a dataset `client_id` may use (its own or shared, by name or
    `ds_` id), in one query; samples included (`sample:X` or a sample's plain name)."""
    found = {n for n in names if sample_name(n) is not None}
    plain = [n for n in names if n not in found and NAME.fullmatch(n)]
    ids = [n for n in plain if PUBLIC_ID.fullmatch(n)]
    if plain:
        rows = session.execute(
            select(Dataset.name, Dataset.public_id).where(
                or_(Dataset.name.in_(plain), Dataset.public_id.in_(ids)), _visible(client_id)
            )
        ).all()
        found.update(n for row in rows for n in row if n in plain)
    return found


def name_hint(session: Session, client_id: str | None, limit: int = 20) -> str:
    """Some names a client may use, for an error message."""
    mine = session.scalars(
        select(Dataset.name)
        .where(_visible(client_id))
        .distinct()
        .order_by(Dataset.name)
        .limit(limit)
    ).all()
    samples = [SAMPLE_PREFIX + n for n in sample_names()]
    return ", ".join([*mine, *samples])


def open_for_task(
    sessions: Sessions, ref: str, *, task_id: str, max_rows: int
) -> StoredDataset | None:
    """The dataset `ref` as the client owning `task_id` sees it, as a handle that streams its
    rows (read when the stage runs); None when there is no such dataset."""
    owner = select(Task.client_id).where(Task.id == task_id).scalar_subquery()
    return open_dataset(sessions, ref, client_id=owner, max_rows=max_rows)


def open_dataset(
    sessions: Sessions, ref: str, *, client_id: Any, max_rows: int
) -> StoredDataset | None:
    """The dataset `ref` (name or `ds_` id) as `client_id` sees it, as a streaming handle."""
    owner = client_id
    with sessions.begin() as session:
        row = resolve(session, ref, owner)
        if row is None:
            return None
        return StoredDataset(
            sessions,
            row.id,
            row.public_id,
            row.name,
            row.record_count,
            list(row.schema.get("columns", [])),
            max_rows,
            row.updated_at,
        )


def find_dataset(
    sessions: Sessions, name: str, *, client_id: str | None
) -> list[dict[str, Any]] | None:
    """Every record of the dataset `client_id` would get for `name` (None: none); for
    scripts and tests over small datasets."""
    found = open_dataset(sessions, name, client_id=client_id, max_rows=1 << 62)
    return None if found is None else found.records()


def _visible(client_id: Any) -> Any:
    return or_(Dataset.client_id.is_(None), Dataset.client_id == client_id)


def _owner(client_id: str | None) -> Any:
    return Dataset.client_id.is_(None) if client_id is None else Dataset.client_id == client_id


def _owned(name: str, client_id: str | None) -> Any:
    return select(Dataset).where(Dataset.name == name, _owner(client_id))
