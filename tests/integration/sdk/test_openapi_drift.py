"""The SDK's models against a live server: the document it serves is the committed snapshot
the models were generated from, and its real answers read as the guide reads them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aia_client import models
from pydantic import BaseModel

from aia_engine.search.indexing import embed_client
from tests.integration.api.conftest import Credentials, LiveApi
from tests.integration.conftest import Services
from tests.unit.sdk.test_generated import changed_parts

M = TypeVar("M", bound=BaseModel)
SNAPSHOT = Path(__file__).resolve().parents[3] / "clients" / "python" / "openapi.json"


def test_the_live_servers_document_is_the_committed_snapshot(live_api: LiveApi) -> None:
    with live_api.client() as http:
        served = http.get("/openapi.json")
    assert served.status_code == 200
    snapshot = json.loads(SNAPSHOT.read_text())
    if served.json() != snapshot:
        changed = changed_parts(snapshot, served.json())
        pytest.fail(
            f"the server's /openapi.json differs from clients/python/openapi.json in {changed}: "
            "run `python clients/python/tools/generate.py` and commit the result"
        )


@pytest.fixture(scope="module")
def creds(make_client: Callable[..., Credentials]) -> Credentials:
    return make_client(scopes="read write")


@pytest.fixture(scope="module")
def http(creds: Credentials, authed: Callable[..., httpx.Client]) -> Iterator[httpx.Client]:
    with authed(creds=creds) as client:
        yield client


def read(model: type[M], response: httpx.Response) -> M:
    """`response`'s body as `model`, which keeps every field of it as the server wrote it."""
    assert response.status_code < 300 or model is models.Health, response.text
    parsed = model.model_validate_json(response.content)
    body: dict[str, Any] = response.json()
    assert parsed.model_dump(mode="json", exclude_unset=True) == body
    return parsed


def test_a_task_reads_as_the_guide_reads_it(http: httpx.Client) -> None:
    body = {"task_type": "data_analysis", "description": "Q3 revenue by region"}
    accepted = read(models.TaskAccepted, http.post("/tasks/submit", json=body))
    assert accepted.task_id.startswith("task_") and accepted.status == "accepted"
    task = read(models.TaskView, http.get(f"/tasks/{accepted.task_id}"))
    assert task.task_id == accepted.task_id
    assert task.status in ("accepted", "queued", "in_progress", "completed", "failed")
    assert isinstance(task.progress, float)
    assert (task.results, task.error) == (None, None) or task.status in ("completed", "failed")


def test_a_semantic_search_hit_reads_as_the_guide_reads_it(
    http: httpx.Client, creds: Credentials, services: Services
) -> None:
    entity = {"name": "Acme Cloud", "industry": "technology", "tier": "enterprise"}
    written = http.post(
        "/knowledge-graph/entities",
        json={"entities": [{"node_id": "acme", "type": "customer", "properties": entity}]},
    )
    read(models.GraphWriteResult, written)
    embed_client(services.sessions, creds.client_id, services.settings)  # what the worker does
    found = read(
        models.SemanticSearchResult,
        http.post("/knowledge-graph/semantic-search", json={"query": "technology customers"}),
    )
    assert found.results[0].entity_data["name"] == "Acme Cloud"
    assert 0 < found.results[0].similarity_score <= 1


def test_the_dashboard_and_health_read_as_the_guide_reads_them(http: httpx.Client) -> None:
    dashboard = read(models.Dashboard, http.get("/business-intelligence/dashboard"))
    assert isinstance(dashboard.metrics.revenue.current_month, float | None)
    assert isinstance(dashboard.metrics.customers.total_active, int | None)
    health = read(models.Health, http.get("/health"))  # 503 without a worker: the same body
    assert health.status in ("healthy", "degraded")
