"""The guide's Python SDK examples (examples/sdk/) run as written against the API process, a
worker, an embedding worker and the event pump: only the credentials are put in and
AIA_BASE_URL set (tests/integration/sdk/guide_runner.py). They print real values."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import Credentials
from tests.integration.sdk.api_process import ApiProcess
from tests.integration.sdk.guide_runner import Expect, run_complete_example, run_streaming_example
from tests.integration.sdk.seed import seed_guide_data, wait_searchable

pytestmark = pytest.mark.timeout(120)  # the complete example polls its task every 5 s


def authed_to(api: ApiProcess, creds: Credentials) -> httpx.Client:
    r = httpx.post(f"{api.url}/auth/token", data=creds.form(grant_type="client_credentials"))
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    return httpx.Client(base_url=api.url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def test_the_complete_sdk_example_prints_real_values(
    api_process: ApiProcess,
    make_client: Callable[..., Credentials],
    embedder: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    creds = make_client()
    with authed_to(api_process, creds) as http:
        seeded = seed_guide_data(http)
        wait_searchable(http, seeded)
    done = run_complete_example(api_process.url, creds.client_id, creds.client_secret, tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Error:" not in out and not done.stderr.strip(), out + done.stderr
    assert re.search(r"^API Status: \w+$", out, re.M), out
    assert re.search(r"^Task submitted: task_\w+$", out, re.M), out
    assert re.search(r"^Task progress: 100(\.0)?%$", out, re.M), out
    assert re.search(r"^Task results: \{.+\}$", out, re.M), out
    for name in seeded.technology:
        assert re.search(rf"^Found: {name} \(Score: 0\.\d+\)$", out, re.M), out
    assert f"Monthly Revenue: ${seeded.revenue:,.2f}\n" in out, out
    assert "Active Customers: 5\n" in out, out


def test_the_streaming_example_prints_task_and_graph_updates(
    api_process: ApiProcess, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    http = authed_to(api_process, creds)
    submitted: list[str] = []
    entity = f"cust-{uuid.uuid4().hex[:8]}"

    def trigger() -> Expect:
        body: dict[str, Any] = {"task_type": "noop", "description": "streamed"}
        r = http.post("/tasks/submit", json=body, headers={"Idempotency-Key": entity})
        assert r.status_code == 200, r.text
        submitted.append(r.json()["task_id"])
        item = {"node_id": entity, "type": "customer", "properties": {"name": "Streamed Co"}}
        w = http.post("/knowledge-graph/entities", json={"entities": [item]})
        assert w.status_code == 200, w.text
        return Expect(task_ids=submitted, entity_ids=[entity])

    with http:
        run = run_streaming_example(
            api_process.url,
            creds.client_id,
            creds.client_secret,
            trigger,
            functions=("stream_task_updates", "stream_knowledge_graph_updates"),
        )
    assert run.ended_early == {}, run.stderr
    (task_id,) = submitted
    assert [n["task_id"] for n in run.notified] == [task_id]
    assert run.notified[0]["status"] == "completed"
    assert run.kg_updates[0]["entity_id"] == entity
    assert run.kg_updates[0]["change_type"] == "created"
    out = "\n".join(run.output)
    assert f"Task {task_id}: completed" in out, out
    assert "Progress: 100" in out, out
    assert "Results: " in out, out
    assert "Knowledge Graph Update: created" in out, out
    assert f"Entity: {entity} (customer)" in out, out
    assert "Streaming error" not in out, out
