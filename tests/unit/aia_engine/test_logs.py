"""JSON log lines: the basics plus known context fields, nothing else."""

from __future__ import annotations

import json
import logging

import pytest

from aia_engine.ops import logs
from aia_engine.ops.logs import JsonFormatter


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


def test_background_logging_writes_every_record_in_order_with_its_exception(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    for handler in saved[0]:
        root.removeHandler(handler)
    try:
        logs.configure("json", "INFO", background=True)
        log = logging.getLogger("aia_engine.requests")
        for n in range(200):
            log.info("request %d", n, extra={"request_id": f"req_{n}"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed %s", "here")
        logs.flush()  # what the API's shutdown does
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert [x["message"] for x in lines[:200]] == [f"request {n}" for n in range(200)]
    assert lines[5]["request_id"] == "req_5"
    assert lines[200]["message"] == "failed here"
    assert "ValueError: boom" in lines[200]["exception"]
