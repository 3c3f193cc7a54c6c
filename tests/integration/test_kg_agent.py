"""The knowledge_graph_agent against real PostgreSQL and real workers: one graph write per
stage (rows stamped with its version, one event per change with source "agent" and the task's
id), idempotent (a write that changes nothing takes no version and writes no event, so a
retried or redelivered stage adds nothing), per-item errors for what cannot be written, and
the graph_query param feeding a later stage the rows the graph now holds."""

from __future__ import annotations

import json
import secrets
import subprocess
from typing import Any

import pytest
from sqlalchemy import text

from aia_engine.errors import InvalidGraphMapping
from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn
from aia_engine.graph.writing import write_items
from tests.integration.conftest import ROOT, Engine, Services

EXAMPLE = json.loads((ROOT / "examples" / "complex_analysis_graph.json").read_text())


def graph_rows(services: Services, client: str) -> dict[str, Any]:
    with services.sessions.begin() as session:
        params = {"c": client}
        return {
            "graph": session.execute(
                text("SELECT version, nodes, relationships FROM kg_graphs WHERE client_id = :c"),
                params,
            ).one_or_none(),
            "nodes": {
                r.node_id: (r.type, r.properties, r.version)
                for r in session.execute(
                    text(
                        "SELECT node_id, type, properties, version FROM kg_nodes "
                        "WHERE client_id = :c"
                    ),
                    params,
                )
            },
            "relationships": {
                r.relationship_id: (r.type, r.source_id, r.target_id, r.properties, r.version)
                for r in session.execute(
                    text(
                        "SELECT relationship_id, type, source_id, target_id, properties, version "
                        "FROM kg_relationships WHERE client_id = :c"
                    ),
                    params,
                )
            },
            "events": [
                (r.type, r.seq, r.payload)
                for r in session.execute(
                    text(
                        "SELECT type, seq, payload FROM task_events WHERE task_id IS NULL "
                        "AND client_id = :c ORDER BY id"
                    ),
                    params,
                )
            ],
        }


def client_id() -> str:
    return f"kg-{secrets.token_hex(4)}"


def test_a_write_is_one_version_and_writing_it_again_changes_nothing(services: Services) -> None:
    client = client_id()
    nodes = [
        (NodeIn("c1", "customer", {"name": "Acme"}), False),
        (NodeIn("p1", "product", {"sku": "X"}), False),
    ]
    rels = [
        RelationshipIn("r1", "PURCHASED", "c1", "p1", {"amount": 5}),
        RelationshipIn("r2", "PURCHASED", "c1", "nowhere", {}),
    ]
    first = write_items(services.sessions, client, nodes, rels, source="agent", task_id="t1")
    assert first.changed and first.version == 1
    assert first.nodes == ["created", "created"] and first.relationships[0] == "created"
    error = first.relationships[1]
    assert isinstance(error, ItemError) and (error.field, error.issue) == (
        "target",
        "node not found",
    )
    state = graph_rows(services, client)
    assert tuple(state["graph"]) == (1, 2, 1)
    assert {v[2] for v in state["nodes"].values()} == {1}
    assert [
        (t, seq, p["entity_id"], p["source"], p["task_id"]) for t, seq, p in state["events"]
    ] == [
        ("knowledge_graph.created", 1, "c1", "agent", "t1"),
        ("knowledge_graph.created", 1, "p1", "agent", "t1"),
        ("knowledge_graph.relationship_added", 1, "c1", "agent", "t1"),
    ]
    assert state["events"][2][2]["relationship"]["target"] == "p1"

    # The same write again (a redelivered stage): no version, no row stamped, no event.
    again = write_items(services.sessions, client, nodes, rels, source="agent", task_id="t1")
    assert not again.changed and again.version == 1
    assert again.nodes == ["unchanged", "unchanged"] and again.relationships[0] == "unchanged"
    assert graph_rows(services, client) == state

    # One property changed, one merged in: version 2, two "updated" events, counts unchanged.
    changed = write_items(
        services.sessions,
        client,
        [(NodeIn("c1", "customer", {"segment": "smb"}), True), nodes[1]],
        [RelationshipIn("r1", "PURCHASED", "c1", "p1", {"amount": 6})],
        source="agent",
        task_id="t2",
    )
    assert changed.version == 2 and changed.nodes == ["updated", "unchanged"]
    after = graph_rows(services, client)
    assert tuple(after["graph"]) == (2, 2, 1)
    assert after["nodes"]["c1"] == ("customer", {"name": "Acme", "segment": "smb"}, 2)
    assert after["nodes"]["p1"][2] == 1  # unchanged: keeps the version that wrote it
    assert after["relationships"]["r1"][3:] == ({"amount": 6}, 2)
    assert [(t, p["entity_id"], "relationship" in p) for t, _, p in after["events"][3:]] == [
        ("knowledge_graph.updated", "c1", False),
        ("knowledge_graph.updated", "c1", True),
    ]


def test_fixed_ends_and_duplicates_are_item_errors_and_tenancy_holds(services: Services) -> None:
    a, b = client_id(), client_id()
    write_items(
        services.sessions,
        a,
        [(NodeIn("x", "t"), False), (NodeIn("y", "t"), False)],
        [RelationshipIn("r", "LINKS", "x", "y")],
        source="api",
    )
    again = write_items(
        services.sessions,
        a,
        [(NodeIn("z", "t"), False), (NodeIn("z", "t"), True)],
        [RelationshipIn("r", "LINKS", "y", "x"), RelationshipIn("r2", "LINKS", "x", "z")],
        source="api",
    )
    assert again.nodes[0] == "created"
    assert isinstance(again.nodes[1], ItemError) and again.nodes[1].issue == "duplicate id"
    assert isinstance(again.relationships[0], ItemError)
    assert again.relationships[0].issue == "type or ends changed"
    assert again.relationships[1] == "created"  # an end written in the same transaction
    # Client B cannot hang a relationship on client A's nodes, nor see them.
    other = write_items(
        services.sessions, b, [], [RelationshipIn("r", "LINKS", "x", "y")], source="api"
    )
    assert not other.changed and isinstance(other.relationships[0], ItemError)
    assert graph_rows(services, b)["nodes"] == {} and graph_rows(services, b)["graph"] is None


def test_a_bad_mapping_is_refused_at_submit(engine: Engine) -> None:
    body = json.loads(json.dumps(EXAMPLE))
    body["workflow"]["stage_5"]["params"]["entities"][1]["node_id"] = "segment_{_key"
    with pytest.raises(InvalidGraphMapping) as caught:
        engine.submit(body, client_id=client_id())
    assert caught.value.details["field"] == "workflow.stage_5.params.entities[1].node_id"


@pytest.mark.timeout(90)
def test_complex_analysis_records_its_findings_and_a_later_stage_queries_them(
    engine: Engine, worker: subprocess.Popen[bytes]
) -> None:
    client = client_id()
    body = json.loads(json.dumps(EXAMPLE))
    body["workflow"]["stage_6"] = {
        "agent": "data_analysis_agent",
        "task": "Analyse the recorded segments",
        "dependencies": ["stage_5"],
        "params": {
            "graph_query": {
                "query": "MATCH (s:Segment)-[:PART_OF]->(m:Market) WHERE m.node_id = $market "
                "RETURN s.name, s.share_pct",
                "parameters": {"market": "market"},
            }
        },
    }
    task_id = engine.submit(body, client_id=client)
    task = engine.wait(task_id)
    assert task["status"] == "completed", task
    state = graph_rows(services=engine.services, client=client)
    assert set(state["nodes"]) == {
        "market", "segment_consumer", "segment_enterprise", "segment_mid_market", "segment_smb",
        "recommendation_R1_consumer", "recommendation_R3_smb", "recommendation_R4_portfolio",
    }  # fmt: skip
    assert state["nodes"]["segment_smb"][:2] == (
        "segment",
        {"name": "smb", "latest_value": 246344.8, "share_pct": 18.77, "growth_pct": -5.6,
         "cagr_pct": -1.15},
    )  # fmt: skip
    assert tuple(state["graph"]) == (1, 8, 6)
    assert len(state["relationships"]) == 6
    # One event per change, no task owns them, each names the source and the task.
    assert len(state["events"]) == 8 + 6
    assert {(p["source"], p["task_id"], seq) for _, seq, p in state["events"]} == {
        ("agent", task_id, 1)
    }
    output = engine.stage(task_id, "stage_5")["output"]
    assert output["nodes"] == {"created": 8, "updated": 0, "unchanged": 0, "failed": 0}
    assert output["relationships"] == {"created": 6, "updated": 0, "unchanged": 0, "failed": 1}
    assert output["errors_total"] == 1
    assert output["errors"][0] | {"message": ""} == {
        "mapping": "relationships[1]", "index": 2, "field": "target", "issue": "node not found",
        "relationship_id": output["errors"][0]["relationship_id"], "message": "",
    }  # fmt: skip
    # stage_6 read the graph the earlier stage wrote, through its graph_query.
    analysed = engine.stage(task_id, "stage_6")["output"]
    assert analysed["source"] == "stage:graph" and analysed["record_count"] == 4
    assert analysed["statistics"]["s.share_pct"]["max"] == 42.55


@pytest.mark.timeout(90)
def test_a_retried_stage_writes_nothing_twice(
    engine: Engine, worker: subprocess.Popen[bytes]
) -> None:
    client = client_id()
    record = dict(EXAMPLE["workflow"]["stage_5"])
    record["agent"] = "test_kg_fail_after_write"
    record["params"] = {**record["params"], "fail_attempts": 1}
    record["retry_backoff"] = 0.1
    body = {
        "task_type": "custom",
        "description": "graph stage that fails once after writing",
        "requirements": {"data_source": "sample:market_segments"},
        "workflow": {
            "stage_1": EXAMPLE["workflow"]["stage_1"],
            "stage_2": EXAMPLE["workflow"]["stage_2"],
            "stage_3": EXAMPLE["workflow"]["stage_3"],
            "stage_5": record,
        },
    }
    task_id = engine.submit(body, client_id=client)
    task = engine.wait(task_id)
    assert task["status"] == "completed", task
    stage = engine.stage(task_id, "stage_5")
    assert stage["attempt"] == 2
    output = stage["output"]
    # The second attempt found everything written by the first: nothing changed.
    assert output["changed"] is False and output["graph_version"] == 1
    assert output["nodes"] == {"created": 0, "updated": 0, "unchanged": 8, "failed": 0}
    state = graph_rows(engine.services, client)
    assert tuple(state["graph"]) == (1, 8, 6)
    assert len(state["events"]) == 14  # once, from the first attempt
