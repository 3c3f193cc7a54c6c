"""Structured logs: a line per request (API) and per stage outcome (worker), with their ids and
timing, and never a token or a payload."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from aia_engine.ops.logs import JsonFormatter
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
    time.sleep(0.2)
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
        time.sleep(0.5)
        text = proc.log_path.read_text()  # type: ignore[attr-defined]
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    finally:
        _stop(proc)
    stages = [line for line in lines if line.get("task_id") == task_id and "stage" in line]
    assert {line["stage"] for line in stages} == {"a", "b"}
    assert all(line["outcome"] == "completed" and line["duration_ms"] >= 0 for line in stages)
