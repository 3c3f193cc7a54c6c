"""Knowledge-graph writes over HTTP against a live server: upserts and deletes with partial
acceptance, versions and change events in the event log, tenancy, the error envelope for every
kind of bad input, and Idempotency-Key replays."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from aia_engine.graph import store
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import Services

Authed = Callable[..., httpx.Client]
ENVELOPE = {"type", "message", "code", "details", "timestamp", "request_id", "documentation_url"}


class Graph:
    """One API client with its own graph: an HTTP client and its client_id (for the rows)."""

    def __init__(self, http: httpx.Client, client_id: str, services: Services) -> None:
        self.http, self.client_id, self.services = http, client_id, services

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"/knowledge-graph{path}", json=body, **kwargs)

    def ok(self, path: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        r = self.post(path, body, **kwargs)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def entities(self, *items: dict[str, Any], merge: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"entities": list(items)}
        if merge is not None:
            body["merge"] = merge
        return self.ok("/entities", body)

    def relationships(self, *items: dict[str, Any]) -> dict[str, Any]:
        return self.ok("/relationships", {"relationships": list(items)})

    def summary(self) -> dict[str, Any]:
        r = self.http.get("/knowledge-graph")
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def node(self, node_id: str) -> httpx.Response:
        return self.http.get(f"/knowledge-graph/entities/{node_id}")

    def events(self) -> list[tuple[int, str, dict[str, Any]]]:
        """This client's graph events: (seq, type, payload), in the order they were written."""
        with self.services.sessions.begin() as session:
            rows = session.execute(
                text(
                    "SELECT seq, type, payload FROM task_events "
                    "WHERE task_id IS NULL AND client_id = :client ORDER BY id"
                ),
                {"client": self.client_id},
            ).all()
        return [(r.seq, r.type, r.payload) for r in rows]

    def rows(self, sql: str) -> list[Any]:
        with self.services.sessions.begin() as session:
            return list(session.execute(text(sql), {"client": self.client_id}).all())


@pytest.fixture
def graph_for(
    authed: Authed, make_client: Callable[..., Credentials], services: Services
) -> Iterator[Callable[..., Graph]]:
    opened: list[httpx.Client] = []

    def make(scopes: str = "read write") -> Graph:
        creds = make_client(scopes=scopes)
        http = authed(creds=creds)
        opened.append(http)
        return Graph(http, creds.client_id, services)

    yield make
    for http in opened:
        http.close()


@pytest.fixture
def graph(graph_for: Callable[..., Graph]) -> Graph:
    return graph_for()


def statuses(answer: dict[str, Any]) -> list[str]:
    return [r["status"] for r in answer["results"]]


def codes(answer: dict[str, Any]) -> list[str | None]:
    return [r.get("error", {}).get("code") for r in answer["results"]]


def node(node_id: str, type_: str = "customer", **props: Any) -> dict[str, Any]:
    return {"node_id": node_id, "type": type_, "properties": props}


def rel(source: str, target: str, type_: str = "PURCHASED", **props: Any) -> dict[str, Any]:
    return {"type": type_, "source": source, "target": target, "properties": props}


def test_create_update_unchanged_and_merge(graph: Graph) -> None:
    first = graph.entities(node("c1", name="Acme", score=8.7), node("p1", "product"))
    assert statuses(first) == ["created", "created"]
    assert [r["node_id"] for r in first["results"]] == ["c1", "p1"]
    assert (first["accepted"], first["rejected"]) == (2, 0)
    v1 = first["graph_version"]
    summary = graph.summary()
    assert summary["version"] == v1 and (summary["nodes"], summary["relationships"]) == (2, 0)
    assert summary["node_types"] == {"customer": 1, "product": 1}
    events_before = graph.events()

    # The same again changes nothing: no version, no event, no row stamp.
    again = graph.entities(node("c1", score=8.7, name="Acme"), node("p1", "product"))
    assert statuses(again) == ["unchanged", "unchanged"] and again["graph_version"] == v1
    assert graph.summary()["version"] == v1 and graph.events() == events_before

    changed = graph.entities(node("c1", name="Acme Corp"), node("p1", "product"))
    assert statuses(changed) == ["updated", "unchanged"]
    v2 = changed["graph_version"]
    assert v2 == v1 + 1
    view = graph.node("c1").json()
    assert view["properties"] == {"name": "Acme Corp"}  # replaced, not merged
    assert view["type"] == "customer" and view["connections"] == 0
    assert view["last_updated"].endswith("Z") and view["created_at"] <= view["last_updated"]

    merged = graph.entities(node("c1", score=9.1), merge=True)
    assert statuses(merged) == ["updated"]
    assert graph.node("c1").json()["properties"] == {"name": "Acme Corp", "score": 9.1}
    same = graph.entities(node("c1", score=9.1), merge=True)
    assert statuses(same) == ["unchanged"] and same["graph_version"] == merged["graph_version"]

    retyped = graph.entities(node("p1", "service"))
    assert statuses(retyped) == ["updated"]
    assert graph.summary()["node_types"] == {"customer": 1, "service": 1}

    events = graph.events()[len(events_before) :]
    assert [(e[1], e[2]["entity_id"], e[2]["entity_type"]) for e in events] == [
        ("knowledge_graph.updated", "c1", "customer"),
        ("knowledge_graph.updated", "c1", "customer"),
        ("knowledge_graph.updated", "p1", "service"),
    ]
    assert [e[0] for e in events] == [v2, v2 + 1, v2 + 2]
    assert all(e[2]["graph_version"] == e[0] and e[2]["source"] == "api" for e in events)


def test_one_request_is_one_version_stamped_on_its_rows_and_events(graph: Graph) -> None:
    answer = graph.entities(*(node(f"n{i}", "item", i=i) for i in range(5)))
    version = answer["graph_version"]
    assert graph.summary()["version"] == version
    stamps = graph.rows("SELECT DISTINCT version FROM kg_nodes WHERE client_id = :client")
    assert [r.version for r in stamps] == [version]
    events = graph.events()
    assert len(events) == 5 and {e[0] for e in events} == {version}
    assert {e[1] for e in events} == {"knowledge_graph.created"}
    assert [e[2]["entity_id"] for e in events] == [f"n{i}" for i in range(5)]


def test_bad_items_are_refused_one_by_one_and_the_valid_ones_written(graph: Graph) -> None:
    answer = graph.entities(
        node("ok1"),
        {"node_id": "", "type": "customer"},
        {"node_id": "x", "type": "not a type"},
        node("x2", reserved_is_fine="yes") | {"properties": {"type": "vip"}},
        {"node_id": "x3", "type": "customer", "properties": {"__labels__": ["Admin"]}},
        {"node_id": "x4", "type": "customer", "properties": {"big": "x" * 70_000}},
        {"node_id": "x5", "type": "customer", "label": "extra field"},
        "not an object",
        node("ok1", name="second"),
        node("ok2"),
    )
    assert statuses(answer) == ["created", *["error"] * 8, "created"]
    assert codes(answer) == [None, *["E035"] * 7, "E038", None]
    assert (answer["accepted"], answer["rejected"]) == (2, 8)
    fields = [r["error"]["details"].get("field") for r in answer["results"][1:9]]
    assert fields == [
        "entities[1].node_id",
        "entities[2].type",
        "entities[3].properties.type",
        "entities[4].properties.__labels__",
        "entities[5].properties",
        "entities[6].label",
        "entities[7]",
        "entities[8]",
    ]
    dup = answer["results"][8]
    assert dup["node_id"] == "ok1" and dup["error"]["details"]["first_index"] == 0
    assert set(answer["results"][1]["error"]) == {"type", "code", "message", "details"}
    assert answer["results"][1]["error"]["type"] == "ValidationError"
    assert graph.node("ok1").json()["properties"] == {}  # the first of the duplicates won
    assert graph.summary()["nodes"] == 2


def test_relationships_ends_collisions_duplicates_and_updates(graph: Graph) -> None:
    graph.entities(node("c1"), node("p1", "product"), node("p2", "product"))
    answer = graph.relationships(
        rel("c1", "p1", amount=10),
        {"relationship_id": "r-fixed", **rel("c1", "p2", amount=5)},
        rel("c1", "nowhere"),
        rel("ghost", "p1"),
        rel("c1", "p1", amount=99),  # the same triple again: the same derived id
        {"type": "PURCHASED", "source": "c1"},
    )
    assert statuses(answer) == ["created", "created", "error", "error", "error", "error"]
    assert codes(answer) == [None, None, "E036", "E036", "E038", "E035"]
    derived = answer["results"][0]["relationship_id"]
    assert derived.startswith("rel_") and answer["results"][1]["relationship_id"] == "r-fixed"
    assert answer["results"][2]["error"]["details"]["field"] == "relationships[2].target"
    assert answer["results"][3]["error"]["details"]["field"] == "relationships[3].source"
    assert graph.node("c1").json()["connections"] == 2
    assert graph.node("p1").json()["connections"] == 1
    summary = graph.summary()
    assert summary["relationships"] == 2 and summary["relationship_types"] == {"PURCHASED": 2}

    v = summary["version"]
    clash = graph.relationships({"relationship_id": "r-fixed", **rel("c1", "p1", amount=5)})
    assert statuses(clash) == ["error"] and codes(clash) == ["E037"]
    assert clash["results"][0]["error"]["details"]["existing"] == {
        "type": "PURCHASED",
        "source": "c1",
        "target": "p2",
    }
    assert clash["results"][0]["error"]["type"] == "Conflict" and clash["graph_version"] == v

    later = graph.relationships(rel("c1", "p1", amount=10), rel("c1", "p1", "VIEWED"),
                                {"relationship_id": "r-fixed", **rel("c1", "p2", amount=6)})  # fmt: skip
    assert statuses(later) == ["unchanged", "created", "updated"]
    assert later["graph_version"] == v + 1
    added, updated = graph.events()[-2:]
    assert added[1] == "knowledge_graph.relationship_added"
    assert added[2]["relationship"]["type"] == "VIEWED" and added[2]["entity_id"] == "c1"
    assert updated[1] == "knowledge_graph.updated"
    assert updated[2]["relationship"] == {
        "relationship_id": "r-fixed",
        "type": "PURCHASED",
        "source": "c1",
        "target": "p2",
        "properties": {"amount": 6},
    }
    assert updated[2]["entity_type"] == "customer"


def test_deleting_a_node_removes_its_relationships_with_events_and_tombstones(
    graph: Graph,
) -> None:
    graph.entities(node("a"), node("b", "product"), node("c", "product"))
    graph.relationships(
        {"relationship_id": "ab", **rel("a", "b")},
        {"relationship_id": "ca", **rel("c", "a", "REFERRED")},
        {"relationship_id": "bc", **rel("b", "c", "SIMILAR")},
        {"relationship_id": "aa", **rel("a", "a", "SELF")},
    )
    assert graph.node("a").json()["connections"] == 4  # a self-loop counts from and to
    seen = len(graph.events())
    answer = graph.ok("/entities/delete", {"node_ids": ["a", "missing", "a"]})
    assert statuses(answer) == ["deleted", "not_found", "error"]
    assert codes(answer) == [None, None, "E038"]
    version = answer["graph_version"]
    events = graph.events()[seen:]
    assert [(e[0], e[1]) for e in events] == [
        (version, "knowledge_graph.relationship_removed"),
        (version, "knowledge_graph.relationship_removed"),
        (version, "knowledge_graph.relationship_removed"),
        (version, "knowledge_graph.deleted"),
    ]
    removed = {e[2]["relationship"]["relationship_id"]: e[2] for e in events[:3]}
    assert set(removed) == {"aa", "ab", "ca"}
    assert removed["ca"]["entity_id"] == "c" and removed["ca"]["entity_type"] == "product"
    assert events[3][2] | {"graph_version": 0} == {
        "change_type": "deleted",
        "entity_id": "a",
        "entity_type": "customer",
        "graph_version": 0,
        "source": "api",
        "relationships_removed": 3,
    }
    summary = graph.summary()
    assert (summary["nodes"], summary["relationships"]) == (2, 1)
    assert summary["relationship_types"] == {"SIMILAR": 1}
    assert graph.rows(
        "SELECT version, kind, item_id FROM kg_tombstones WHERE client_id = :client"
    ) == [(version, "node", "a")]
    r = graph.node("a")
    assert r.status_code == 404 and r.json()["error"]["code"] == "E004"

    again = graph.ok("/entities/delete", {"node_ids": ["a"]})
    assert statuses(again) == ["not_found"] and again["graph_version"] == version
    assert len(graph.events()) == seen + 4


def test_a_merged_relationship_update_event_carries_the_stored_properties(
    graph: Graph,
) -> None:
    graph.entities(node("a"), node("b", "product"))
    graph.relationships({"relationship_id": "ab", **rel("a", "b", amount=1)})
    answer = graph.ok(
        "/relationships",
        {"relationships": [{"relationship_id": "ab", **rel("a", "b", note="x")}], "merge": True},
    )
    assert statuses(answer) == ["updated"]
    (event,) = graph.events()[-1:]
    assert event[1] == "knowledge_graph.updated"
    assert event[2]["relationship"]["properties"] == {"amount": 1, "note": "x"}


def test_a_delete_that_takes_many_relationships_reports_a_count_not_a_flood(
    graph: Graph,
) -> None:
    from aia_engine.graph.writer import CASCADE_EVENTS_MAX

    leaves = CASCADE_EVENTS_MAX + 1
    graph.entities(node("hub"), *(node(f"leaf{i}", "product") for i in range(999)))
    graph.entities(*(node(f"leaf{i}", "product") for i in range(999, leaves)))
    links = [rel("hub", f"leaf{i}") for i in range(leaves)]
    graph.relationships(*links[:1000])
    graph.relationships(*links[1000:])
    seen = len(graph.events())
    answer = graph.ok("/entities/delete", {"node_ids": ["hub", "leaf0"]})
    assert statuses(answer) == ["deleted", "deleted"]
    events = graph.events()[seen:]
    assert [e[1] for e in events] == ["knowledge_graph.deleted"] * 2
    removed = {e[2]["entity_id"]: e[2]["relationships_removed"] for e in events}
    assert removed == {"hub": leaves, "leaf0": 1}
    assert (graph.summary()["nodes"], graph.summary()["relationships"]) == (leaves - 1, 0)
    # One node deleted by its path says how many relationships went, past the cap too.
    graph.entities(node("hub"))
    graph.relationships(*(rel("hub", f"leaf{i}") for i in range(1, 1000)))
    graph.relationships(rel("leaf1", "hub"), rel("leaf2", "hub"))
    r = graph.http.delete("/knowledge-graph/entities/hub")
    assert r.status_code == 200 and r.json()["relationships_removed"] == 1001, r.text


def test_delete_relationships_and_delete_one_entity(graph: Graph) -> None:
    graph.entities(node("a"), node("b"))
    made = graph.relationships(rel("a", "b"), rel("b", "a"))
    ab = made["results"][0]["relationship_id"]
    answer = graph.ok("/relationships/delete", {"relationship_ids": [ab, "nope"]})
    assert statuses(answer) == ["deleted", "not_found"]
    version = answer["graph_version"]
    (event,) = graph.events()[-1:]
    assert event[:2] == (version, "knowledge_graph.relationship_removed")
    assert event[2]["relationship"]["relationship_id"] == ab
    assert graph.rows(
        "SELECT kind, item_id FROM kg_tombstones WHERE client_id = :client AND version = "
        + str(version)
    ) == [("relationship", ab)]
    assert graph.summary()["relationships"] == 1

    r = graph.http.delete("/knowledge-graph/entities/b")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "node_id": "b",
        "status": "deleted",
        "relationships_removed": 1,
        "graph_version": version + 1,
    }
    assert [e[1] for e in graph.events()[-2:]] == [
        "knowledge_graph.relationship_removed",
        "knowledge_graph.deleted",
    ]
    gone = graph.http.delete("/knowledge-graph/entities/b")
    assert gone.status_code == 404 and set(gone.json()["error"]) == ENVELOPE
    assert graph.summary() | {"updated_at": None} == {
        "version": version + 1,
        "nodes": 1,
        "relationships": 0,
        "node_types": {"customer": 1},
        "relationship_types": {},
        "updated_at": None,
    }


def test_a_client_never_reads_or_touches_another_clients_graph(
    graph_for: Callable[..., Graph],
) -> None:
    a, b = graph_for(), graph_for()
    a.entities(node("shared", name="A's"), node("a-only"))
    a.relationships({"relationship_id": "a-rel", **rel("shared", "a-only")})
    a_before = a.summary()

    assert b.node("shared").status_code == 404
    assert b.summary() == {
        "version": 0,
        "nodes": 0,
        "relationships": 0,
        "node_types": {},
        "relationship_types": {},
        "updated_at": None,
    }
    # B's upsert of the same node id creates B's own node.
    assert statuses(b.entities(node("shared", name="B's"))) == ["created"]
    assert b.node("shared").json()["properties"] == {"name": "B's"}
    assert a.node("shared").json()["properties"] == {"name": "A's"}
    # B cannot link to A's nodes, nor delete or reuse A's relationship.
    linked = b.relationships(rel("shared", "a-only"))
    assert codes(linked) == ["E036"]
    assert linked["results"][0]["error"]["details"]["provided_value"] == "a-only"
    assert statuses(b.ok("/entities/delete", {"node_ids": ["a-only"]})) == ["not_found"]
    assert statuses(b.ok("/relationships/delete", {"relationship_ids": ["a-rel"]})) == ["not_found"]
    assert b.http.delete("/knowledge-graph/entities/a-only").status_code == 404
    # B deleting its own "shared" leaves A's.
    assert statuses(b.ok("/entities/delete", {"node_ids": ["shared"]})) == ["deleted"]
    assert a.node("shared").status_code == 200 and a.node("a-only").status_code == 200
    after = a.summary()
    assert after == a_before and after["relationships"] == 1
    assert all(e[2]["entity_id"] == "shared" for e in b.events())


def test_scopes(graph_for: Callable[..., Graph]) -> None:
    reader = graph_for("read")
    r = reader.post("/entities", {"entities": [node("x")]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "E403"
    assert reader.http.delete("/knowledge-graph/entities/x").status_code == 403
    assert reader.summary()["version"] == 0
    assert reader.node("x").status_code == 404
    with httpx.Client(base_url=str(reader.http.base_url)) as anonymous:
        assert anonymous.get("/knowledge-graph").status_code == 401


TOO_MANY = {"entities": [node(f"n{i}") for i in range(1001)]}


@pytest.mark.parametrize(
    ("path", "content", "status", "code", "field"),
    [
        ("/entities", b'{"entities": [', 400, "E400", None),
        ("/entities", b'{"entities": [{"node_id": "a", "type": "t", "properties": {"v": NaN}}]}',
         400, "E400", None),
        ("/entities", b"[]", 422, "E001", "body"),
        ("/entities", b'{"entities": {"node_id": "a"}}', 422, "E001", "entities"),
        ("/entities", b'{"entities": []}', 422, "E001", "entities"),
        ("/entities", b"{}", 422, "E001", "entities"),
        ("/entities", b'{"entities": [], "entity": []}', 422, "E001", "entity"),
        ("/entities", b'{"entities": [{"node_id": "a", "type": "t"}], "merge": "yes"}', 422,
         "E001", "merge"),
        ("/entities", json.dumps(TOO_MANY).encode(), 422, "E001", "entities"),
        ("/entities", b'{"entities": [{"node_id": "a\\u0000", "type": "t"}]}', 422, "E001",
         "entities.0.node_id"),
        ("/relationships", b'{"relationships": "all"}', 422, "E001", "relationships"),
        ("/relationships", b'{"relationships": [], "merge": 1}', 422, "E001", "relationships"),
        ("/entities/delete", b'{"node_ids": null}', 422, "E001", "node_ids"),
        ("/relationships/delete", b'{"relationship_ids": 7}', 422, "E001", "relationship_ids"),
        ("/entities", b'{"entities": [{"node_id": "' + b"x" * 1_100_000 + b'"}]}', 413, "E413",
         None),
    ],
)  # fmt: skip
def test_bad_requests_answer_the_envelope_never_a_500(
    graph: Graph, path: str, content: bytes, status: int, code: str, field: str | None
) -> None:
    r = graph.http.post(
        f"/knowledge-graph{path}", content=content, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == ENVELOPE and error["code"] == code
    if field is not None:
        assert error["details"]["field"] == field
    assert graph.summary()["version"] == 0


def test_bad_items_in_every_write_endpoint_are_per_item_errors(graph: Graph) -> None:
    weird: list[Any] = [None, 7, "", "x" * 201, ["a"], {"node_id": "a"}, "line\nbreak"]
    for path, field in [
        ("/entities", "entities"),
        ("/relationships", "relationships"),
        ("/entities/delete", "node_ids"),
        ("/relationships/delete", "relationship_ids"),
    ]:
        answer = graph.ok(path, {field: weird})
        assert statuses(answer) == ["error"] * len(weird), (path, answer)
        assert set(codes(answer)) == {"E035"}
        assert answer["graph_version"] == 0
    other = graph.post("/entities", {"entities": [node("a")]}, headers={"Content-Type": "text/csv"})
    assert other.status_code == 415 and set(other.json()["error"]) == ENVELOPE


def test_idempotency_key_replays_the_first_answer_and_writes_nothing(graph: Graph) -> None:
    body = {"entities": [node("k1", n=1), node("k2")]}
    key = {"Idempotency-Key": "load-2025-10-03"}
    first = graph.post("/entities", body, headers=key)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    events = graph.events()
    graph.entities(node("k1", n=2))  # the graph moves on meanwhile

    again = graph.post("/entities", body, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert graph.node("k1").json()["properties"] == {"n": 2}  # not written again
    assert len(graph.events()) == len(events) + 1

    changed = graph.post("/entities", {"entities": [node("k1", n=3)]}, headers=key)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "E009"
    elsewhere = graph.post("/entities/delete", {"node_ids": ["k1"]}, headers=key)
    assert elsewhere.status_code == 409
    assert graph.node("k1").status_code == 200

    bad_key = graph.post("/entities", body, headers={"Idempotency-Key": "has space"})
    assert bad_key.status_code == 422 and set(bad_key.json()["error"]) == ENVELOPE

    # A key is per client, and a no-op answer is remembered too.
    noop = graph.post(
        "/entities/delete", {"node_ids": ["nothing"]}, headers={"Idempotency-Key": "d1"}
    )
    replay = graph.post(
        "/entities/delete", {"node_ids": ["nothing"]}, headers={"Idempotency-Key": "d1"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == noop.json()


def test_the_store_refuses_non_finite_numbers_per_item(graph: Graph) -> None:
    """The HTTP body reader refuses NaN before any item is read (400 above); callers of the
    store (the agent, the import) get a per-item error instead."""
    result = store.upsert_nodes(
        graph.services.sessions,
        graph.client_id,
        [node("fine"), node("nan", v=math.nan), node("inf", v=[math.inf])],
        source="agent",
        task_id=None,
    )
    assert [i.status for i in result.items] == ["created", "error", "error"]
    assert result.items[1].error is not None and result.items[1].error["code"] == "E035"
    assert graph.summary()["nodes"] == 1
    assert graph.events()[-1][2]["source"] == "agent"
