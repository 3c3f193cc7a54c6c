"""Page cursors of the lists ordered by (created_at, id) descending (GET /tasks, GET
/business-intelligence/cycles): an opaque base64url of `[created_at ISO, id]`.

A cursor comes back from the client, so it is checked before it reaches SQL: anything but a
string id (a number would be silently turned into one), or an id holding NUL (PostgreSQL text
cannot, psycopg raises DataError) or a lone surrogate (not encodable, UnicodeEncodeError) is
refused with E001 naming `cursor`, like any other cursor this API never returned.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from aia_engine.errors import InvalidRequest


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) of a cursor `encode_cursor` made; InvalidRequest (422) otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(row_id, str):
            raise TypeError("the cursor's parts are not strings")
        if "\x00" in row_id:  # no id holds NUL
            raise ValueError("the cursor's id holds NUL")
        row_id.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
        return datetime.fromisoformat(at), row_id
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(
            "cursor is not one this API returned; start again without it",
            field="cursor",
            issue="invalid cursor",
            provided_value=cursor[:200],
        ) from exc
