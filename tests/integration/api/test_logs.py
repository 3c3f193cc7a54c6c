"""Structured logs: a line per request (API) and per stage outcome (worker), with their ids and
timing, and never a token or a payload."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aia_engine.ops.logs import JsonFormatter
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for
from tests.integration.conftest import Engine, Services, WorkerFactory, _stop, noop, workflow


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_one_line_per_request_with_ids_and_timing(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    token = token_for(live_api, creds)
    logger = logging.getLogger("aia_engine.requests")
    collect, level = Collect(), logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    try:
        _requests(live_api, creds, token, collect)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)


def _requests(live_api: LiveApi, creds: Credentials, token: str, collect: Collect) -> None:
    secret_text = "do-not-log-this-requirement"
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        ok = http.post(
            "/tasks/submit",
            json={"task_type": "data_analysis", "description": secret_text, "requirements": {}},
        )
        missing = http.get("/tasks/task_nope")
    # The access log line is written once the answer has been sent, so it may come a little later.
    wanted = {ok.headers["x-request-id"], missing.headers["x-request-id"]}
    wait_until(
        lambda: wanted <= {r.__dict__.get("request_id") for r in collect.records},
        "both requests' log records",
        timeout=10,
    )
    records = {r.__dict__.get("request_id"): r for r in collect.records}
    for response, status in ((ok, ok.status_code), (missing, 404)):
        record = records[response.headers["x-request-id"]]
        assert record.__dict__["client_id"] == creds.client_id
        assert record.__dict__["status"] == status and record.__dict__["duration_ms"] > 0
        line = JsonFormatter().format(record)
        assert token not in line and secret_text not in line and creds.client_secret not in line
        assert json.loads(line)["path"] == response.request.url.path


def test_worker_logs_each_stage_outcome_as_json(
    services: Services, start_worker: WorkerFactory, engine: Engine
) -> None:
    proc = start_worker("jsonlogs", env={"AIA_LOG_FORMAT": "json"})
    try:
        task_id = engine.submit(workflow({"a": noop(), "b": noop("a")}))
        assert engine.wait(task_id)["status"] == "completed"

        def stage_lines() -> list[dict[str, Any]] | None:
            text = proc.log_path.read_text()  # type: ignore[attr-defined]
            lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            logged = {line.get("stage") for line in lines if line.get("task_id") == task_id}
            return lines if {"a", "b"} <= logged else None

        # The worker logs a stage's outcome after recording it: the task may end first.
        lines = wait_until(
            stage_lines, "both stages' log lines", timeout=10, ignore=(ValueError,)
        )  # a line still being written is not JSON yet
    finally:
        _stop(proc)
    stages = [line for line in lines if line.get("task_id") == task_id and "stage" in line]
    assert {line["stage"] for line in stages} == {"a", "b"}
    assert all(line["outcome"] == "completed" and line["duration_ms"] >= 0 for line in stages)
