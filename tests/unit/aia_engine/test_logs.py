"""JSON log lines: the basics plus known context fields, nothing else."""

from __future__ import annotations

import json
import logging

from aia_engine.logs import JsonFormatter


def test_a_line_is_one_json_object_with_the_context_fields() -> None:
    record = logging.LogRecord(
        "aia_engine.requests", logging.INFO, __file__, 1, "GET %s", ("/x",), None
    )
    record.__dict__.update(
        request_id="req_1", client_id="c1", status=200, duration_ms=1.5,
        body={"secret": "s3cr3t"}, authorization="Bearer abc",
    )  # fmt: skip
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert parsed["message"] == "GET /x" and parsed["level"] == "info"
    assert parsed["request_id"] == "req_1" and parsed["client_id"] == "c1"
    assert parsed["status"] == 200 and parsed["duration_ms"] == 1.5
    assert "s3cr3t" not in line and "Bearer" not in line  # unknown extras are never written
    assert "\n" not in line
