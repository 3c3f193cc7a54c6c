"""The batch sender's own logic: line keys, file parsing, chunk halving and the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from aia_engine.client.batch import BatchSummary, Line, _send_chunk, read_lines
from aia_engine.client.http import ApiClient


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


def test_a_chunk_too_big_for_the_api_is_halved_until_it_fits() -> None:
    sizes: list[int] = []

    def fake(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        items = json.loads(request.content)["tasks"]
        sizes.append(len(items))
        if len(items) > 2:
            return httpx.Response(413, json={"error": {"code": "E400", "message": "too big"}})
        results: list[dict[str, Any]] = [
            {"status": "rejected", "error": {"message": "bad"}}
            if item["task_type"] == "bad"
            else {"status": "accepted", "task_id": f"task_{item['task_type']}", "created": True}
            for item in items
        ]
        return httpx.Response(200, json={"results": results})

    api = ApiClient("http://api.test", "id", "secret")
    api._http.close()
    api._http = httpx.Client(base_url=api.url, transport=httpx.MockTransport(fake))
    chunk = [Line(n, {"task_type": "bad" if n == 3 else str(n)}, key=f"k{n}") for n in range(1, 6)]
    with api:
        outcomes = _send_chunk(api, chunk)
    assert sizes == [5, 2, 3, 1, 2]
    assert [(n, kind) for n, kind, _ in outcomes] == [
        (1, "created"), (2, "created"), (3, "rejected"), (4, "created"), (5, "created"),
    ]  # fmt: skip


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
