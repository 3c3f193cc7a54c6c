"""What an error may say about what it was sent: never a secret.

An error names the field that was wrong and usually echoes the value (`details.provided_value`).
For a secret-bearing field (a webhook secret, a client secret, a token, a password, an API key:
judged by its name) the value is replaced by `REDACTED`, at any depth of an echoed object, and
the same value is masked wherever else the error repeats it. Passwords in URLs
(`https://user:password@host`) are masked in every string of the error.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"

_SECRET_NAME = re.compile(
    r"secret|passw|passphrase|token|api_?key|authoriz|credential|private_?key|cookie|signature"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"]+@")
_SHORTEST_MASKED = 4  # shorter values are too common to mask inside other text


def is_secret_name(name: str) -> bool:
    """Whether a field named `name` (or a dotted path of names) carries a secret."""
    plain = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    return bool(_SECRET_NAME.search(plain))


def redact_error(message: str, details: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`message` and a copy of `details` with secrets removed (the inputs are not changed)."""
    found: set[str] = set()
    cleaned = {key: _clean(key, value, found) for key, value in details.items()}
    field = details.get("field")
    if isinstance(field, str) and is_secret_name(field) and "provided_value" in details:
        _collect(details["provided_value"], found)
        cleaned["provided_value"] = REDACTED
    masks = sorted((s for s in found if len(s) >= _SHORTEST_MASKED), key=len, reverse=True)
    return _mask(message, masks), _mask_all(cleaned, masks)


def _clean(key: str, value: Any, found: set[str]) -> Any:
    if is_secret_name(key) and key != "field":
        _collect(value, found)
        return REDACTED
    if isinstance(value, dict):
        return {k: _clean(str(k), v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean("", v, found) for v in value]
    return value


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect(v, found)


def _mask(text: str, masks: list[str]) -> str:
    for secret in masks:
        text = text.replace(secret, REDACTED)
    return _URL_USERINFO.sub(r"\1***@", text)


def _mask_all(value: Any, masks: list[str]) -> Any:
    if isinstance(value, str):
        return value if value == REDACTED else _mask(value, masks)
    if isinstance(value, dict):
        return {k: _mask_all(v, masks) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v, masks) for v in value]
    return value
