"""The shipped samples as datasets are shown: read-only, under their names `sample:NAME`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aia_engine.datasets import SAMPLE_PREFIX, sample_description, sample_records
from aia_engine.datasets.schema import SchemaBuilder


@cache
def _sample_view(name: str) -> dict[str, Any]:
    records = sample_records(name)
    builder = SchemaBuilder()
    for record in records:
        builder.add(record)
    return {
        "id": SAMPLE_PREFIX + name,
        "name": SAMPLE_PREFIX + name,
        "client_id": None,
        "rows": len(records),
        "size_bytes": len(json.dumps(records, separators=(",", ":")).encode()),
        "format": "json",
        "columns": builder.columns(),
        "shared": True,
        "read_only": True,
        "description": sample_description(name),
        "created_at": None,
        "updated_at": None,
    }


def sample_view(name: str) -> dict[str, Any]:
    """The view of the sample `name` (as given by `sample_name`), a fresh copy."""
    return json.loads(json.dumps(_sample_view(name)))  # type: ignore[no-any-return]
