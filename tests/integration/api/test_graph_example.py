"""The shipped example graph, imported with the one command its README gives, answers the
guide's three queries over HTTP in the guide's shape; the expected rows are read from the
example file itself (plain Python), not from the engine."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aia_engine.graph.model import derived_relationship_id
from api.app import create_app
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import Services

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
ROWS = [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]
NODES = {r["node_id"]: r for r in ROWS if r["kind"] == "node"}
RELS = {  # no ids in the file: each is derived from (source, type, target), as documented
    r.get("relationship_id") or derived_relationship_id(r["source"], r["type"], r["target"]): r
    for r in ROWS
    if r["kind"] == "relationship"
}
DEGREE = Counter(end for r in RELS.values() for end in (r["source"], r["target"]))


@pytest.fixture(scope="module")
def http(
    services: Services, make_client: Callable[..., Credentials], tmp_path_factory: Any
) -> Iterator[httpx.Client]:
    creds = make_client(scopes="read")
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(EXAMPLE), "--client", creds.client_id],
        env={**services.env, "AIA_DATA_DIR": str(tmp_path_factory.mktemp("kg"))},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    server, thread, url = serve(create_app(services.settings))
    try:
        api = LiveApi(url, server.config.app, server)
        token = token_for(api, creds)
        with api.client(headers={"Authorization": f"Bearer {token}"}) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def query(http: httpx.Client, text: str) -> dict[str, Any]:
    r = http.post(
        "/knowledge-graph/query", json={"query": text, "format": "json", "include_metadata": True}
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert set(answer) == {"query_id", "results", "metadata"}
    assert answer["query_id"].startswith("kg_query_")
    meta = answer["metadata"]
    assert isinstance(meta["execution_time_ms"], int | float) and meta["execution_time_ms"] >= 0
    assert isinstance(meta["cache_hit"], bool) and meta["total_nodes_scanned"] >= 0
    return answer


def assert_node(found: dict[str, Any]) -> dict[str, Any]:
    """A node in the guide's shape, equal to the example file's."""
    assert {"node_id", "type", "properties", "connections", "last_updated"} <= set(found)
    stored = NODES[found["node_id"]]
    assert (found["type"], found["properties"]) == (stored["type"], stored["properties"])
    assert found["connections"] == DEGREE[found["node_id"]]
    assert found["last_updated"].endswith("Z") or "+00:00" in found["last_updated"]
    return stored


def test_the_guides_entity_query_returns_ten_customers(http: httpx.Client) -> None:
    answer = query(http, "MATCH (n:Entity) WHERE n.type = 'customer' RETURN n LIMIT 10")
    assert len(answer["results"]) == 10
    ids = {assert_node(node)["node_id"] for node in answer["results"]}
    assert len(ids) == 10 and all(NODES[i]["type"] == "customer" for i in ids)
    assert answer["metadata"]["total_nodes_scanned"] > 0


def test_the_guides_purchased_query_returns_technology_purchases(http: httpx.Client) -> None:
    answer = query(
        http,
        'MATCH (c:Customer)-[r:PURCHASED]->(p:Product) WHERE p.category = "Technology" '
        "RETURN c, r, p LIMIT 20",
    )
    expected = {
        rid for rid, r in RELS.items()
        if r["type"] == "PURCHASED" and NODES[r["target"]]["properties"]["category"] == "Technology"
    }  # fmt: skip
    assert len(expected) >= 20 and len(answer["results"]) == 20
    for row in answer["results"]:
        assert set(row) == {"c", "r", "p"}
        customer, rel, product = assert_node(row["c"]), row["r"], assert_node(row["p"])
        assert set(rel) == {"relationship_id", "type", "source", "target", "properties"}
        assert rel["relationship_id"] in expected
        stored = RELS[rel["relationship_id"]]
        assert (rel["type"], rel["source"], rel["target"], rel["properties"]) == (
            "PURCHASED", customer["node_id"], product["node_id"], stored["properties"]
        )  # fmt: skip


def test_the_locustfiles_count_query(http: httpx.Client) -> None:
    assert query(http, "MATCH (n) RETURN count(n) LIMIT 1")["results"] == [len(NODES)]
