"""Semantic search end to end, on the shipped example graph: imported with `aia-engine kg
import`, embedded by a real embedding worker (queue aia.embeddings, beat's sweep), searched over
HTTP with the real encoder and index.

- The labelled queries (semantic_search_labels.json: ~25 queries, expected entities read off
  the example file by hand) reach a mean recall@5 above FLOOR; the figure is printed.
- similarity_score is the real cosine (recomputed here from the encoder and the entity text),
  match_explanation's per-field figures are the real per-field cosines.
- Filters, tenancy, and every bad input answering 422 E062 naming the field.
- A workflow stage takes the top entities as input `similar` (examples/find_similar_customers.json).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from aia_engine.search import encoder as search_encoder
from aia_engine.search import texts
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, wait_task
from tests.integration.conftest import (
    ROOT,
    Engine,
    Services,
    WorkerFactory,
    start_beat,
    stop_process,
)

pytestmark = pytest.mark.timeout(180)  # the module's fixture imports and embeds 330 entities

EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
NODES = {
    row["node_id"]: row
    for row in map(json.loads, EXAMPLE.read_text().splitlines())
    if row.get("kind") == "node"
}
LABELS = json.loads((ROOT / "tests/integration/api/semantic_search_labels.json").read_text())
WORKFLOW = json.loads((ROOT / "examples" / "find_similar_customers.json").read_text())
GUIDE = {
    "query": "high-value customers in technology sector",
    "limit": 20,
    "threshold": 0.7,
    "include_explanations": True,
}

FLOOR = 0.9
"""Least mean recall@5 over the labelled queries. Measured 1.000 (26 of 26 perfect) with the
shipped int8 model on this graph, where customers carry a description in words (before they
did, names such as "Initech Retail" outweighed the industry field and recall was 0.846). The
floor leaves room for two queries' worth of drift (1/26 = 0.038 each) between storage paths
and model builds, and is far above ranking by entity type alone (five random entities of the
expected type: 0.11 expected)."""


@pytest.fixture(scope="module")
def indexed(
    services: Services,
    make_client: Callable[..., Credentials],
    start_worker: WorkerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Credentials]:
    """A client holding the example graph, every entity embedded."""
    creds = make_client(scopes="read write")
    imported = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(EXAMPLE), "--client", creds.client_id],
        env={**services.env, "AIA_DATA_DIR": str(tmp_path_factory.mktemp("kg"))},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    fast_sweep = {"AIA_SEARCH_EMBED_SWEEP_S": "1", "AIA_SEARCH_EMBED_STALE_S": "1"}
    embedder = start_worker("embedder", queues="aia.embeddings", concurrency=1, env=fast_sweep)
    beat = start_beat(services, fast_sweep, name="embed-beat")
    try:
        wait_until(
            lambda: embedded(services, creds.client_id) == len(NODES),
            lambda: f"every entity embedded: {embedded(services, creds.client_id)}",
            timeout=120,
            interval=0.5,
        )
        yield creds
    finally:
        stop_process(beat)
        stop_process(embedder)


def embedded(services: Services, client_id: str) -> int:
    with services.sessions.begin() as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM kg_embeddings WHERE client_id = :c "
                    "AND status = 'embedded'"
                ),
                {"c": client_id},
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def http(indexed: Credentials, authed: Callable[..., httpx.Client]) -> Iterator[httpx.Client]:
    with authed(creds=indexed) as client:
        yield client


def search(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/knowledge-graph/semantic-search", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert list(answer) == ["search_id", "results", "query_vector_dimensions", "search_time_ms"]
    assert re.fullmatch(r"kgs_[0-9a-f]{24}", answer["search_id"])
    assert answer["query_vector_dimensions"] == 384
    assert isinstance(answer["search_time_ms"], int | float) and answer["search_time_ms"] > 0
    scores = [hit["similarity_score"] for hit in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    for hit in answer["results"]:
        stored = NODES[hit["entity_id"]]
        assert hit["entity_data"] == stored["properties"]
        assert hit["entity_type"] == stored["type"]
    return answer


def ids(answer: dict[str, Any]) -> list[str]:
    return [hit["entity_id"] for hit in answer["results"]]


def test_the_labelled_queries_reach_the_recall_floor(http: httpx.Client) -> None:
    recalls = []
    for label in LABELS["queries"]:
        top = ids(search(http, query=label["query"], limit=5, include_explanations=False))
        expected = set(label["expected"])
        recall = len(expected & set(top)) / min(5, len(expected))
        recalls.append(recall)
        print(f"recall@5 {recall:.2f}  {label['query']!r}: {top}")
    mean = sum(recalls) / len(recalls)
    print(f"mean recall@5 over {len(recalls)} labelled queries: {mean:.3f} (floor {FLOOR})")
    assert len(recalls) >= 20
    assert mean >= FLOOR


def test_the_guides_query_ranks_high_value_technology_customers_first(http: httpx.Client) -> None:
    strict = search(http, **GUIDE)  # the guide's body as written, threshold 0.7 included
    assert all(hit["similarity_score"] >= 0.7 for hit in strict["results"])
    answer = search(http, **{**GUIDE, "threshold": 0.0, "limit": 10})
    top = [NODES[i]["properties"] for i in ids(answer)]
    print("the guide's query:", [(p["name"], p["industry"], p["value_score"]) for p in top])
    # The labelled rule: Technology customers with value_score >= 75 (there are 6); the first
    # five results are five of them.
    assert all(p["industry"] == "Technology" and p["value_score"] >= 75 for p in top[:5]), top


def test_scores_and_explanations_are_the_real_cosines(http: httpx.Client) -> None:
    query = "negative feedback about billing"
    answer = search(http, query=query, limit=5)
    encoder = search_encoder.get_encoder()
    q = encoder.encode([query])[0]
    for hit in answer["results"]:
        node = NODES[hit["entity_id"]]
        vector = encoder.encode([texts.entity_text(node["type"], node["properties"])])[0]
        assert abs(hit["similarity_score"] - float(vector @ q)) < 2e-3, hit
        # "Closest fields: text 'Unhappy about billing…' (0.71), type 'feedback' (0.43); ..."
        explanation = hit["match_explanation"]
        assert explanation.startswith("Closest fields: "), explanation
        fields = re.findall(r"(\w+) '[^']*' \((\d\.\d\d)\)", explanation)
        assert len(fields) == 2, explanation
        for key, shown in fields:
            value = node["type"] if key == "type" else node["properties"][key]
            field_vec = encoder.encode([f"{key.replace('_', ' ')}: {value}"])[0]
            assert abs(float(field_vec @ q) - float(shown)) <= 0.006, (key, explanation)
        assert explanation.endswith("query terms found: feedback, billing"), explanation
    assert all(NODES[i]["properties"]["rating"] <= 2 for i in ids(answer))


def test_without_explanations_there_is_none(http: httpx.Client) -> None:
    answer = search(http, query="network switches", limit=3, include_explanations=False)
    assert [hit["match_explanation"] for hit in answer["results"]] == [None] * 3


def test_type_and_property_filters_and_the_threshold(http: httpx.Client) -> None:
    products = search(http, query="technology", entity_types=["product"], limit=50)
    assert len(products["results"]) == 50
    assert {NODES[i]["type"] for i in ids(products)} == {"product"}
    emea = search(http, query="technology customers", filters={"region": "EMEA"}, limit=100)
    expected = {i for i, n in NODES.items() if n["properties"].get("region") == "EMEA"}
    assert set(ids(emea)) == expected
    two = search(http, query="x", filters={"region": "EMEA", "industry": "Education"})
    assert ids(two) == ["customer-015"]
    assert search(http, query="network switches", threshold=0.6)["results"]
    assert all(
        h["similarity_score"] >= 0.6
        for h in search(http, query="network switches", threshold=0.6, limit=100)["results"]
    )


def test_a_client_searches_only_its_own_entities(
    http: httpx.Client, authed: Callable[..., httpx.Client]
) -> None:
    assert len(search(http, query="customers", limit=100)["results"]) == 100
    with authed("read") as other:
        assert search(other, query="customers", limit=100)["results"] == []


@pytest.mark.parametrize(
    ("body", "field", "issue"),
    [
        ({"query": ""}, "query", "blank"),
        ({"query": "   "}, "query", "blank"),
        ({"limit": 5}, "query", "missing"),
        ({"query": "x" * 100_000}, "query", "too long"),
        ({"query": "q", "limit": 0}, "limit", "out of range"),
        ({"query": "q", "limit": 10_000}, "limit", "out of range"),
        ({"query": "q", "limit": "ten"}, "limit", "not an integer"),
        ({"query": "q", "threshold": 2}, "threshold", "out of range"),
        ({"query": "q", "threshold": -1}, "threshold", "out of range"),
        ({"query": "q", "entity_types": ["no such type!"]}, "entity_types[0]", "not a type name"),
        ({"query": "q", "filters": {"region": ["EMEA"]}}, "filters.region", "not a scalar"),
        ({"query": "q", "include_explanations": "yes"}, "include_explanations", "not a boolean"),
        ({"query": "q", "top_k": 3}, "top_k", "unknown field"),
    ],
)
def test_bad_input_is_refused_by_name(
    authed: Callable[..., httpx.Client], body: dict[str, Any], field: str, issue: str
) -> None:
    with authed("read") as client:
        r = client.post("/knowledge-graph/semantic-search", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["type"]) == ("E062", "ValidationError")
    assert (error["details"]["field"], error["details"]["issue"]) == (field, issue)
    assert len(r.content) < 2000  # a 100 kB query is not echoed back


def test_a_workflow_finds_similar_customers_then_analyses_them(
    http: httpx.Client, engine: Engine, worker: subprocess.Popen[bytes]
) -> None:
    r = http.post("/tasks/orchestrate", json=WORKFLOW)
    assert r.status_code == 200, r.text
    task = wait_task(http, r.json()["task_id"])
    assert task["status"] == "completed", task
    output = engine.stage(task["task_id"], "analyse")["output"]
    assert output["source"] == "stage:similar" and output["record_count"] == 20
    groups = output["group_by"]["groups"]
    assert output["group_by"]["field"] == "industry"
    assert max(groups, key=lambda g: groups[g]["count"]) == "Technology"
    assert output["statistics"]["similarity_score"]["min"] >= 0.3
    assert output["statistics"]["value_score"]["count"] == 20


def test_a_bad_semantic_search_stage_is_refused_at_submit(http: httpx.Client) -> None:
    body = json.loads(json.dumps(WORKFLOW))
    body["workflow"]["analyse"]["params"]["semantic_search"]["limit"] = 0
    r = http.post("/tasks/orchestrate", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "E062"
    assert error["details"]["field"] == "workflow.analyse.params.semantic_search.limit"
