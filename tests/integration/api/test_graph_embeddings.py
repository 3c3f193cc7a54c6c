"""Indexing by workers: an entity written over HTTP, by an import chunk or by an agent's write is
embedded by a real `celery worker -Q aia.embeddings` once its task ran, and is then found by
nearest(); its `embedding_status` shows on GET /knowledge-graph/entities/{id} and the counts in
/metrics and the Prometheus exposition; a write that keeps the embedded text encodes nothing;
a worker killed (SIGKILL) mid-batch loses nothing: beat's sweep queues the client again and
another worker finishes.

The workers run the shipped model; the test compares the stored vectors with the same model
run in the test process."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from aia_engine.graph import store
from aia_engine.graph.imports import import_rows, row_from_item
from aia_engine.graph.model import NodeIn
from aia_engine.graph.writing import write_items
from aia_engine.search.encoder import NAME as MODEL
from aia_engine.search.encoder import get_encoder
from aia_engine.search.indexing import texts_for
from aia_engine.search.store import nearest
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for
from tests.integration.api.test_metrics import samples
from tests.integration.conftest import (
    Services,
    WorkerFactory,
    log_tail,
    start_beat,
    stop_process,
)


@pytest.fixture(scope="module")
def embedder(start_worker: WorkerFactory) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker("embedder", queues="aia.embeddings", concurrency=1)
    yield proc
    stop_process(proc)


def expected_vector(services: Services, node_type: str, properties: dict[str, Any]) -> Any:
    """The vector the worker stores: the model over the entity's text."""
    text_of, _ = texts_for(services.settings)
    return get_encoder().encode([text_of(node_type, properties)])[0]


def rows(services: Services, client_id: str) -> dict[str, Any]:
    with services.sessions.begin() as session:
        found = session.execute(
            text(
                "SELECT node_id, status, model, seq, embedding FROM kg_embeddings "
                "WHERE client_id = :c"
            ),
            {"c": client_id},
        ).all()
    return {r.node_id: r for r in found}


def all_embedded(services: Services, client_id: str, count: int) -> dict[str, Any] | None:
    found = rows(services, client_id)
    done = len(found) == count and all(r.status == "embedded" for r in found.values())
    return found if done else None


def test_an_entity_written_over_http_is_searchable_once_its_task_ran(
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    services: Services,
    embedder: subprocess.Popen[bytes],
) -> None:
    creds, other = make_client(), make_client()
    headers = {"Authorization": f"Bearer {token_for(live_api, creds)}"}
    entity = {"node_id": "acme", "type": "customer",
              "properties": {"name": "Acme Robotics", "industry": "Technology", "value_score": 91}}  # fmt: skip
    with live_api.client(headers=headers) as http:
        r = http.post("/knowledge-graph/entities", json={"entities": [entity]})
        assert r.status_code == 200, r.text
        found = wait_until(
            lambda: all_embedded(services, creds.client_id, 1),
            lambda: f"acme embedded:\n{log_tail(embedder)}",
            timeout=30,
        )
        view = http.get("/knowledge-graph/entities/acme").json()
        assert view["embedding_status"]["status"] == "embedded"
        assert view["embedding_status"]["model"] == MODEL
        assert http.get("/metrics").json()["business_metrics"]["embeddings"] == {
            "pending": 0, "embedded": 1, "failed": 0,
        }  # fmt: skip
    assert found["acme"].model == MODEL
    q = expected_vector(services, "customer", entity["properties"])  # type: ignore[arg-type]
    assert list(found["acme"].embedding) == pytest.approx(q.tolist(), abs=1e-4)
    with services.sessions.begin() as session:
        hits = nearest(session, creds.client_id, q, limit=5, threshold=0.0, model=MODEL)
        assert nearest(session, other.client_id, q, limit=5, threshold=-1.0) == []  # tenancy
    assert [h.node_id for h in hits] == ["acme"] and hits[0].score == pytest.approx(1.0, abs=1e-5)

    admin = token_for(live_api, make_client(scopes="read admin"))
    with live_api.client(headers={"Authorization": f"Bearer {admin}"}) as http:
        scraped = samples(http.get("/metrics/prometheus").text)
    assert scraped[("aia_kg_embeddings", (("status", "embedded"),))] >= 1


def test_a_rewrite_that_keeps_the_text_encodes_nothing(
    services: Services, embedder: subprocess.Popen[bytes]
) -> None:
    client = "rewrite-client"
    store.upsert_nodes(services.sessions, client,
                       [{"node_id": "p1", "type": "product", "properties": {"name": "Blue Widget"}}])  # fmt: skip
    first = wait_until(lambda: all_embedded(services, client, 1), "p1 embedded", timeout=30)
    # A boolean is not part of the embedded text: the node changes, its text does not.
    result = store.upsert_nodes(services.sessions, client, [
        {"node_id": "p1", "type": "product", "properties": {"name": "Blue Widget", "active": True}}
    ])  # fmt: skip
    assert result.items[0].status == "updated"
    again = wait_until(lambda: all_embedded(services, client, 1), "p1 embedded again", timeout=30)
    assert again["p1"].seq == first["p1"].seq  # no new vector was stored
    with services.sessions.begin() as session:
        version = session.execute(
            text("SELECT version FROM kg_embedding_state WHERE client_id = :c"), {"c": client}
        ).scalar()
    assert version == 1  # one batch encoded, ever
    # A new text is encoded again.
    store.upsert_nodes(services.sessions, client,
                       [{"node_id": "p1", "type": "product", "properties": {"name": "Red Widget"}}])  # fmt: skip
    third = wait_until(
        lambda: (
            (found := all_embedded(services, client, 1))
            and found["p1"].seq > first["p1"].seq
            and found
        ),
        "p1 re-embedded",
        timeout=30,
    )
    assert list(third["p1"].embedding) == pytest.approx(
        expected_vector(services, "product", {"name": "Red Widget"}).tolist(), abs=1e-4
    )


def test_import_chunks_and_agent_writes_are_indexed(
    services: Services, embedder: subprocess.Popen[bytes]
) -> None:
    client = "import-client"
    items = [{"kind": "node", "node_id": f"i{i}", "type": "supplier",
              "properties": {"name": f"Supplier {i}", "region": "north"}} for i in range(150)]  # fmt: skip
    import_rows(services.sessions, client, [row_from_item(item, i + 1) for i, item in enumerate(items)],
                chunk_size=100)  # fmt: skip
    wait_until(lambda: all_embedded(services, client, 150), "150 imported nodes", timeout=40)
    write_items(services.sessions, client,
                [(NodeIn("agent-1", "segment", {"name": "Enterprise"}), False)], [],
                source="agent")  # fmt: skip
    found = wait_until(lambda: all_embedded(services, client, 151), "the agent's node", timeout=30)
    assert found["agent-1"].model == MODEL


def embedded_count(services: Services, client: str) -> int:
    with services.sessions.begin() as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM kg_embeddings WHERE client_id = :c "
                    "AND status = 'embedded'"
                ),
                {"c": client},
            ).scalar_one()
        )


@pytest.mark.timeout(150)
def test_a_worker_killed_mid_batch_loses_nothing(
    services: Services, start_worker: WorkerFactory, embedder: subprocess.Popen[bytes]
) -> None:
    client = "kill-client"
    small = {"AIA_SEARCH_EMBED_BATCH": "16", "AIA_SEARCH_EMBED_STALE_S": "1"}
    stop_process(embedder)  # the module's worker must not take this client's batches
    victim = start_worker("victim", queues="aia.embeddings", concurrency=1, env=small)
    total = 1000  # ~60 batches of 16: the kill lands while batches are being encoded
    store.upsert_nodes(services.sessions, client, [
        {"node_id": f"k{i}", "type": "customer", "properties": {"name": f"Customer {i}"}}
        for i in range(total)
    ])  # fmt: skip
    wait_until(lambda: embedded_count(services, client) >= 16, "a first batch", timeout=30)
    os.killpg(victim.pid, signal.SIGKILL)  # its children too, mid-run
    victim.wait(10)
    at_kill = embedded_count(services, client)
    assert at_kill < total, "the worker finished before it was killed"
    fast = {"AIA_SEARCH_EMBED_STALE_S": "1", "AIA_SEARCH_EMBED_SWEEP_S": "0.5"}
    beat = start_beat(services, env=fast)
    rescuer = start_worker("rescuer", queues="aia.embeddings", concurrency=1, env=fast)
    try:
        found = wait_until(
            lambda: all_embedded(services, client, total),
            lambda: f"every entity embedded after the kill:\n{log_tail(rescuer)}",
            timeout=55,
        )
    finally:
        stop_process(rescuer)
        stop_process(beat)
    assert all(len(r.embedding) == 384 for r in found.values())


def test_a_client_without_a_graph_counts_no_embeddings(
    live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(live_api, make_client())
    with httpx.Client(base_url=live_api.url, headers={"Authorization": f"Bearer {token}"}) as h:
        counts = h.get("/metrics").json()["business_metrics"]["embeddings"]
    assert counts == {"pending": 0, "embedded": 0, "failed": 0}
