"""Logging: one JSON object per line (`AIA_LOG_FORMAT=json`) or plain text.

Context travels as `extra=` fields, never inside the message: `request_id`, `client_id`,
`task_id`, `stage`, `agent`, `duration_ms`, `status`, `method`, `path`, `outcome`, `attempt`.
Only those names (and the basics) are written, so a stray `extra` cannot leak a payload, and
nothing here ever logs a body, a token or a secret.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FIELDS = (
    "request_id",
    "client_id",
    "task_id",
    "stage",
    "agent",
    "duration_ms",
    "status",
    "method",
    "path",
    "outcome",
    "attempt",
    "alert_type",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str, level: str = "INFO") -> None:
    """Install one handler on the root logger (idempotent)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_aia", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._aia = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.setLevel(level.upper())
