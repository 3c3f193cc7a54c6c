"""The batch sender's own logic: line keys, file parsing, each line's outcome and the summary.
(Chunk halving lives in the SDK: tests/unit/clients/test_retry_hooks.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from aia_client import AIAAuthenticationError, AIASyncClient

from aia_engine.client.batch import BatchSummary, Line, _send_chunk, read_lines


def test_keys_name_the_batch_line_and_content(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"task_type": "a"}\n\n[1]\n{oops\n{"task_type": "b"}\n')
    lines = list(read_lines(path, batch_id="B"))
    assert [(ln.number, ln.body) for ln in lines] == [
        (1, {"task_type": "a"}), (3, None), (4, None), (5, {"task_type": "b"}),
    ]  # fmt: skip
    assert "JSON object, not list" in (lines[1].error or "") and "not valid JSON" in (
        lines[2].error or ""
    )
    assert lines[0].key.startswith("batch:B:1:")
    path.write_text('{"task_type": "changed"}\n')  # a corrected line is new work
    assert next(read_lines(path, batch_id="B")).key != lines[0].key


def test_csv_columns_become_task_fields(tmp_path: Path) -> None:
    path = tmp_path / "tasks.csv"
    path.write_text(
        "task_type,requirements,context.region,priority\n"
        'a,"{""n"": 1}",eu,high\n'
        "b,{bad,,\n"
        "c,,,,extra\n"
    )
    lines = list(read_lines(path, batch_id="B"))
    assert lines[0].body == {
        "task_type": "a", "requirements": {"n": 1}, "context": {"region": "eu"}, "priority": "high",
    }  # fmt: skip
    assert "requirements is not valid JSON" in (lines[1].error or "")
    assert "more fields than the header" in (lines[2].error or "")


def test_each_line_gets_its_outcome_and_a_chunk_that_cannot_go_fails_only_its_lines() -> None:
    answers: list[httpx.Response] = []

    def fake(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        items = json.loads(request.content)["tasks"]
        if answers:
            return answers.pop(0)
        results: list[dict[str, Any]] = [
            {"index": i, "status": "rejected",
             "error": {"code": "E002", "message": "bad", "details": {"field": "workflow"}}}
            if item["task_type"] == "bad"
            else {"index": i, "status": "accepted", "task_id": f"task_{item['task_type']}",
                  "created": item["task_type"] != "old"}
            for i, item in enumerate(items)
        ]  # fmt: skip
        return httpx.Response(200, json={"accepted": 0, "rejected": 0, "results": results})

    http = httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(fake))
    names = {1: "a", 2: "old", 3: "bad", 4: "b"}
    chunk = [Line(n, {"task_type": names[n]}, key=f"k{n}") for n in names]
    with AIASyncClient("id", "secret", base_url="http://api.test", http_client=http,
                       max_retries=0) as api:  # fmt: skip
        assert _send_chunk(api, chunk) == [
            (1, "created", "task_a"), (2, "already", "task_old"),
            (3, "rejected", "E002 bad (field workflow)"), (4, "created", "task_b"),
        ]  # fmt: skip
        answers.append(httpx.Response(500, json={"error": {"code": "E500", "message": "down"}}))
        assert {kind for _, kind, _ in _send_chunk(api, chunk)} == {"failed"}
        answers.append(httpx.Response(422, json={"error": {"code": "E001", "message": "no"}}))
        assert {kind for _, kind, _ in _send_chunk(api, chunk)} == {"rejected"}
        answers.append(httpx.Response(401, json={"error": {"code": "E010", "message": "who"}}))
        answers.append(httpx.Response(401, json={"error": {"code": "E010", "message": "who"}}))
        with pytest.raises(AIAAuthenticationError):  # no line can go: the run stops
            _send_chunk(api, chunk)


def test_the_summary_counts_and_says_when_all_is_well() -> None:
    summary = BatchSummary(total=4)
    summary.record([(1, "created", "t1"), (2, "already", "t2")])
    assert summary.done == 2 and summary.ok and summary.earlier == ["t2"]
    summary.record([(3, "rejected", "bad"), (4, "failed", "network")])
    assert summary.done == 4 and not summary.ok
    text = summary.render()
    assert "1 accepted, 1 already submitted, 1 rejected, 1 failed" in text
    assert "line 3 rejected: bad" in text and "run the same command again" in text
    summary = BatchSummary(total=1, finished={"cancelled": 1})
    assert not summary.ok
