"""What a stage may store: an output PostgreSQL accepts, within the size limit, and an error
record that can always be written.

A stage whose outcome cannot be recorded must still end: an output that is not JSON (NaN,
Infinity, objects JSON has no form for), that is larger than AIA_MAX_STAGE_OUTPUT_BYTES, or
that PostgreSQL refuses when it is written (a NUL character, a lone surrogate, a value over one
of its limits) fails the stage with E020 instead of leaving it running.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy.exc import DBAPIError

from aia_engine.errors import StageOutputNotStorable

# SQLSTATE classes that say "this value", not "this connection": 22 data exception (invalid
# JSON text, untranslatable character, numeric out of range), 54 program limit exceeded (a
# jsonb over its size limit). Anything else (a lost connection, a restart) is worth retrying.
_REFUSED_CLASSES = ("22", "54")
# A NUL (\u0000, not preceded by an escaped backslash) or a lone UTF-16 surrogate escape:
# valid JSON that jsonb refuses.
_NUL = re.compile(r"(?:^|[^\\])(?:\\\\)*\\u0000")
_SURROGATE = re.compile(
    r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}"
)


def encode_output(output: object, *, stage: str, agent: str, max_bytes: int) -> str:
    """The output as the JSON text to store; `StageOutputNotStorable` when it cannot be."""
    if not isinstance(output, dict):
        raise StageOutputNotStorable(
            f"agent {agent!r} of stage {stage!r} returned {type(output).__name__}, not an object",
            stage=stage,
            reason="not_object",
        )
    try:
        encoded = json.dumps(output, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StageOutputNotStorable(
            f"the output of stage {stage!r} (agent {agent!r}) is not JSON and cannot be "
            f"stored: {exc}",
            stage=stage,
            reason="not_json",
        ) from exc
    if len(encoded) > max_bytes:  # ASCII (json.dumps escapes the rest): characters are bytes
        raise StageOutputNotStorable(
            f"the output of stage {stage!r} (agent {agent!r}) is {len(encoded)} bytes of JSON; "
            f"at most {max_bytes} are stored (AIA_MAX_STAGE_OUTPUT_BYTES)",
            stage=stage,
            reason="too_large",
            size_bytes=len(encoded),
            limit_bytes=max_bytes,
        )
    return encoded


def refused_value(exc: DBAPIError) -> str | None:
    """PostgreSQL's reason when it refused a value (not when the connection failed)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_CLASSES:
        return str(exc.orig).strip().splitlines()[0][:500]
    return None


def refused_output(stage: str, reason: str) -> dict[str, Any]:
    return StageOutputNotStorable(
        f"PostgreSQL refused to store the output of stage {stage!r}: {reason}",
        stage=stage,
        reason="refused",
    ).to_dict()


def storable_error(error: dict[str, Any]) -> dict[str, Any]:
    """`error` if PostgreSQL can store it, else its type, code and a cleaned message."""
    try:
        encoded = json.dumps(error, allow_nan=False)
        if not (_NUL.search(encoded) or _SURROGATE.search(encoded)):
            return error
    except (TypeError, ValueError, RecursionError):
        pass
    return {
        "type": _clean(error.get("type", "Error"))[:100],
        "code": _clean(error.get("code", "E500"))[:10],
        "message": _clean(error.get("message", ""))[:2000],
        "details": {},
    }


def _clean(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
