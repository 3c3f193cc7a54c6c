"""Logging: one JSON object per line (`AIA_LOG_FORMAT=json`) or plain text.

Context travels as `extra=` fields, never inside the message: `request_id`, `client_id`,
`task_id`, `stage`, `agent`, `duration_ms`, `status`, `method`, `path`, `outcome`, `attempt`.
Only those names (and the basics) are written, so a stray `extra` cannot leak a payload, and
nothing here ever logs a body, a token or a secret.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
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


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to a thread of their own. In-process, so the record itself travels: only
    its message is fixed now (its arguments could change), its exception stays for the
    formatter."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg, record.args = record.getMessage(), None
        return record


_listener: logging.handlers.QueueListener | None = None


def configure(log_format: str, level: str = "INFO", *, background: bool = False) -> None:
    """Install one handler on the root logger (idempotent). `background` (the API): records are
    formatted and written by a thread of their own, off the event loop; `flush()` at shutdown."""
    global _listener
    root = logging.getLogger()
    handler: logging.Handler | None = next(
        (h for h in root.handlers if getattr(h, "_aia", False)), None
    )
    if handler is None:
        stream = logging.StreamHandler(sys.stderr)
        handler = stream
        if background:
            _listener = logging.handlers.QueueListener(
                queue.SimpleQueue(), stream, respect_handler_level=True
            )
            handler = _Enqueue(_listener.queue)
            _listener.start()
        handler.__dict__["_aia"] = True
        root.addHandler(handler)
    target = _listener.handlers[0] if _listener is not None else handler
    target.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.setLevel(level.upper())


def flush() -> None:
    """Write out what the background thread still holds (and stop it; later records are
    written directly)."""
    global _listener
    if _listener is None:
        return
    _listener.stop()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Enqueue):
            root.removeHandler(handler)
            direct = _listener.handlers[0]
            direct.__dict__["_aia"] = True
            root.addHandler(direct)
    _listener = None
