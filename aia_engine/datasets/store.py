"""Named datasets in PostgreSQL: add, list, delete, and the tenancy-aware lookups that
submissions (does the name exist?) and workers (its records, when a stage runs) make.

A dataset with `client_id` NULL is shared (the operator's); one with a client id is that
client's own. A client sees its own datasets and the shared ones, its own first.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from aia_engine.clock import utcnow
from aia_engine.datasets import SAMPLE_PREFIX, sample_name, sample_names
from aia_engine.db.models import Dataset, Task
from aia_engine.db.session import Sessions
from aia_engine.errors import Conflict, InvalidRequest, NotFound
from aia_engine.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class DatasetNotFound(NotFound):
    def __init__(self, name: str, client_id: str | None) -> None:
        owner = f" of client {client_id}" if client_id else " (shared)"
        super().__init__(f"no dataset {name[:200]!r}{owner}", name=name[:200])


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidRequest(
            f"dataset name {name!r} is not valid: 1-100 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit ({SAMPLE_PREFIX!r} names the shipped samples)",
            field="name",
            issue="invalid name",
            provided_value=name[:200],
        )
    return name


def add_dataset(
    sessions: Sessions,
    name: str,
    records: list[dict[str, Any]],
    *,
    settings: Settings,
    client_id: str | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """Store `records` as dataset `name` (shared, or `client_id`'s own). Refuses an empty or
    oversized dataset, values PostgreSQL cannot store, and an existing name unless `replace`."""
    check_name(name)
    if not records:
        raise InvalidRequest(
            f"dataset {name!r} holds no records", field="records", issue="empty", provided_value=0
        )
    if len(records) > settings.dataset_max_records:
        raise InvalidRequest(
            f"dataset {name!r} has {len(records)} records; at most "
            f"{settings.dataset_max_records} are allowed (AIA_DATASET_MAX_RECORDS)",
            field="records",
            issue="too many records",
            provided_value=len(records),
        )
    try:
        encoded = json.dumps(records, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise InvalidRequest(
            f"dataset {name!r} holds a value JSON cannot carry (NaN or infinity): {exc}",
            field="records",
            issue="not JSON",
            provided_value=None,
        ) from exc
    if "\\u0000" in encoded:
        raise InvalidRequest(
            f"dataset {name!r} holds a NUL character (\\u0000), which PostgreSQL cannot store",
            field="records",
            issue="NUL character",
            provided_value=None,
        )
    size = len(encoded.encode())
    if size > settings.dataset_max_bytes:
        raise InvalidRequest(
            f"dataset {name!r} is {size} bytes as JSON; at most {settings.dataset_max_bytes} "
            "are allowed (AIA_DATASET_MAX_BYTES)",
            field="records",
            issue="too large",
            provided_value=size,
        )
    fields = sorted({key for record in records for key in record})[:1000]
    now = utcnow()
    with sessions.begin() as session:
        row = session.scalars(_owned(name, client_id).with_for_update()).one_or_none()
        if row is not None and not replace:
            raise Conflict(
                f"dataset {name!r} already exists; add it with --replace to replace its records",
                name=name,
            )
        if row is None:
            row = Dataset(name=name, client_id=client_id, created_at=now)
            session.add(row)
        row.records, row.record_count, row.size_bytes = records, len(records), size
        row.fields, row.updated_at = fields, now
        session.flush()
        return _view(row)


def list_datasets(sessions: Sessions, *, client_id: str | None = None) -> list[dict[str, Any]]:
    """Shared datasets and (with `client_id`) that client's own, without their records."""
    columns = [c for c in Dataset.__table__.c if c.name != "records"]
    query = select(*columns).order_by(Dataset.name, Dataset.client_id.nulls_first())
    if client_id is not None:
        query = query.where(or_(Dataset.client_id.is_(None), Dataset.client_id == client_id))
    with sessions.begin() as session:
        return [_view(row) for row in session.execute(query).all()]


def delete_dataset(sessions: Sessions, name: str, *, client_id: str | None = None) -> None:
    with sessions.begin() as session:
        gone = session.execute(
            delete(Dataset).where(Dataset.name == name, _owner(client_id)).returning(Dataset.id)
        ).first()
    if gone is None:
        raise DatasetNotFound(name, client_id)


def visible_names(session: Session, names: list[str], client_id: str | None) -> set[str]:
    """Which of `names` name a dataset `client_id` may use (its own or shared), in one query;
    samples included (`sample:X` or a sample's plain name)."""
    found = {n for n in names if sample_name(n) is not None}
    # Only valid names can be stored (and a NUL must not reach PostgreSQL).
    plain = [n for n in names if n not in found and NAME.fullmatch(n)]
    if plain:
        visible = or_(Dataset.client_id.is_(None), Dataset.client_id == client_id)
        found.update(
            session.scalars(
                select(Dataset.name).where(Dataset.name.in_(plain), visible).distinct()
            ).all()
        )
    return found


def name_hint(session: Session, client_id: str | None, limit: int = 20) -> str:
    """Some names a client may use, for an error message."""
    visible = or_(Dataset.client_id.is_(None), Dataset.client_id == client_id)
    mine = session.scalars(
        select(Dataset.name).where(visible).distinct().order_by(Dataset.name).limit(limit)
    ).all()
    samples = [SAMPLE_PREFIX + n for n in sample_names()]
    return ", ".join([*mine, *samples])


def records_for_task(sessions: Sessions, name: str, *, task_id: str) -> list[dict[str, Any]] | None:
    """The records of dataset `name` as seen by the client owning `task_id` (its own first,
    then shared), read when the stage runs; None when there is no such dataset."""
    owner = select(Task.client_id).where(Task.id == task_id).scalar_subquery()
    return _records(sessions, name, owner)


def find_dataset(
    sessions: Sessions, name: str, *, client_id: str | None
) -> list[dict[str, Any]] | None:
    """The records of the dataset `client_id` would get for `name` (None: none)."""
    return _records(sessions, name, client_id)


def _records(sessions: Sessions, name: str, owner: Any) -> list[dict[str, Any]] | None:
    if not NAME.fullmatch(name):
        return None
    query = (
        select(Dataset.records)
        .where(Dataset.name == name, or_(Dataset.client_id.is_(None), Dataset.client_id == owner))
        .order_by(Dataset.client_id.is_(None))
        .limit(1)
    )
    with sessions.begin() as session:
        records = session.scalar(query)
    return None if records is None else list(records)


def _owner(client_id: str | None) -> Any:
    return Dataset.client_id.is_(None) if client_id is None else Dataset.client_id == client_id


def _owned(name: str, client_id: str | None) -> Any:
    return select(Dataset).where(Dataset.name == name, _owner(client_id))


def _view(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "client_id": row.client_id,
        "records": row.record_count,
        "size_bytes": row.size_bytes,
        "fields": list(row.fields),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }
