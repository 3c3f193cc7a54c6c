"""POST /knowledge-graph/query against a live API: the guide's queries in the guide's shape,
each supported construct against rows computed independently (plain Python over the same
data), the refused constructs, tenancy, the cache catching up after a write, and a long query
stopped at its time limit while the API keeps answering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import networkx as nx
import pytest
from sqlalchemy import text

from aia_engine.db.session import Sessions
from aia_engine.graph import cache as graph_cache
from aia_engine.graph import versions
from api.app import create_app
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for
from tests.integration.conftest import Services

pytestmark = pytest.mark.timeout(120)

Node = tuple[str, str, dict[str, Any]]
Rel = tuple[str, str, str, str, dict[str, Any]]

# -- the example business graph -----------------------------------------------------------

CUSTOMERS: list[Node] = [
    ("cust_1", "customer", {"name": "Acme Corp", "industry": "Technology", "value_score": 8.7}),
    ("cust_2", "customer", {"name": "Globex", "industry": "Retail", "value_score": 6.1}),
    ("cust_3", "customer", {"name": "Initech", "industry": "Technology", "value_score": 4.2}),
    ("cust_4", "customer", {"name": "Umbrella", "industry": "Health", "value_score": 9.4}),
    ("cust_5", "customer", {"name": "Hooli", "industry": "Technology", "value_score": 7.5}),
]
PRODUCTS: list[Node] = [
    ("prod_1", "product", {"name": "Laptop", "category": "Technology", "price": 1200}),
    ("prod_2", "product", {"name": "Lamp", "category": "Home", "price": 40}),
    ("prod_3", "product", {"name": "Monitor", "category": "Technology", "price": 300}),
    ("prod_4", "product", {"name": "Vitamins", "category": "Health", "price": 25}),
    ("prod_5", "product", {"name": "Router", "category": "Technology", "price": 90}),
]
PURCHASES: list[Rel] = [
    ("buy_1", "PURCHASED", "cust_1", "prod_1", {"amount": 2400, "date": "2025-01-10"}),
    ("buy_2", "PURCHASED", "cust_1", "prod_3", {"amount": 600, "date": "2025-02-11"}),
    ("buy_3", "PURCHASED", "cust_2", "prod_2", {"amount": 80, "date": "2025-03-12"}),
    ("buy_4", "PURCHASED", "cust_3", "prod_5", {"amount": 90, "date": "2025-04-13"}),
    ("buy_5", "PURCHASED", "cust_4", "prod_4", {"amount": 50, "date": "2025-05-14"}),
    ("buy_6", "PURCHASED", "cust_5", "prod_1", {"amount": 1200, "date": "2025-06-15"}),
    ("buy_7", "PURCHASED", "cust_5", "prod_3", {"amount": 300, "date": "2025-07-16"}),
]
KNOWS: list[Rel] = [
    ("knows_1", "KNOWS", "cust_1", "cust_2", {}),
    ("knows_2", "KNOWS", "cust_2", "cust_3", {}),
    ("knows_3", "KNOWS", "cust_3", "cust_4", {}),
]
NODES = CUSTOMERS + PRODUCTS
RELS = PURCHASES + KNOWS
PROPS = {node_id: props for node_id, _, props in NODES}


def write_graph(
    sessions: Sessions,
    client_id: str,
    nodes: list[Node] = (),  # type: ignore[assignment]
    rels: list[Rel] = (),  # type: ignore[assignment]
) -> int:
    """One write unit straight into the tables, the way every writer does it (kg-spec.md)."""
    with sessions.begin() as s:
        version = versions.begin_write(s, client_id)
        if nodes:
            s.execute(
                text(
                    "INSERT INTO kg_nodes (client_id, node_id, type, properties, version) "
                    "VALUES (:c, :id, :type, CAST(:props AS jsonb), :v) "
                    "ON CONFLICT (client_id, node_id) DO UPDATE SET type = excluded.type, "
                    "properties = excluded.properties, version = excluded.version, updated_at = now()"
                ),
                [{"c": client_id, "id": i, "type": t, "props": json.dumps(p), "v": version}
                 for i, t, p in nodes],
            )  # fmt: skip
        if rels:
            s.execute(
                text(
                    "INSERT INTO kg_relationships (client_id, relationship_id, type, source_id, "
                    "target_id, properties, version) VALUES (:c, :id, :type, :s, :t, "
                    "CAST(:props AS jsonb), :v) ON CONFLICT (client_id, relationship_id) DO UPDATE "
                    "SET properties = excluded.properties, version = excluded.version"
                ),
                [{"c": client_id, "id": i, "type": t, "s": src, "t": tgt, "props": json.dumps(p),
                  "v": version} for i, t, src, tgt, p in rels],
            )  # fmt: skip
        versions.add_counts(s, client_id, nodes=len(nodes), relationships=len(rels))
    return version


@pytest.fixture(scope="module")
def kg_api(services: Services) -> Iterator[LiveApi]:
    settings = services.settings.model_copy(update={"kg_query_timeout_s": 1.0})
    app = create_app(settings)
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def client_for(
    kg_api: LiveApi, make_client: Callable[..., Credentials]
) -> Iterator[Callable[[str], tuple[httpx.Client, str]]]:
    opened: list[httpx.Client] = []

    def make(scopes: str = "read") -> tuple[httpx.Client, str]:
        creds = make_client(scopes=scopes)
        token = token_for(kg_api, creds)
        http = kg_api.client(headers={"Authorization": f"Bearer {token}"})
        opened.append(http)
        return http, creds.client_id

    yield make
    for http in opened:
        http.close()


@pytest.fixture(scope="module")
def shop(services: Services, client_for: Callable[..., tuple[httpx.Client, str]]) -> httpx.Client:
    """A client holding the example graph."""
    http, client_id = client_for()
    write_graph(services.sessions, client_id, NODES, RELS)
    return http


def ask(http: httpx.Client, query: str, **body: Any) -> dict[str, Any]:
    r = http.post("/knowledge-graph/query", json={"query": query, **body})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["query_id"].startswith("kg_query_")
    return answer


def refused(http: httpx.Client, query: str, **body: Any) -> dict[str, Any]:
    r = http.post("/knowledge-graph/query", json={"query": query, **body})
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    return error


def node_view(node_id: str) -> dict[str, Any]:
    kind = next(t for i, t, _ in NODES if i == node_id)
    degree = sum(1 for _, _, s, t, _ in RELS if node_id in (s, t)) + sum(
        1 for _, _, s, t, _ in RELS if s == t == node_id
    )
    return {"node_id": node_id, "type": kind, "properties": PROPS[node_id], "connections": degree}


def without_time(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_time(v) for k, v in value.items() if k != "last_updated"}
    if isinstance(value, list):
        return [without_time(v) for v in value]
    return value


def canonical(rows: list[Any]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


# -- the guide's three queries -----------------------------------------------------------


def test_the_guides_entity_query(shop: httpx.Client) -> None:
    answer = ask(shop, "MATCH (n:Entity) WHERE n.type = 'customer' RETURN n LIMIT 10", format="json",
                 include_metadata=True)  # fmt: skip
    assert canonical(without_time(answer["results"])) == canonical(
        [node_view(i) for i, _, _ in CUSTOMERS]
    )
    for node in answer["results"]:
        assert node["last_updated"].endswith("Z")
    meta = answer["metadata"]
    assert meta["execution_time_ms"] > 0
    assert meta["total_nodes_scanned"] == len(NODES)  # (n:Entity) checks every node
    assert isinstance(meta["cache_hit"], bool)


def test_the_guides_purchased_query(shop: httpx.Client) -> None:
    answer = ask(
        shop,
        'MATCH (c:Customer)-[r:PURCHASED]->(p:Product) WHERE p.category = "Technology" '
        "RETURN c, r, p LIMIT 20",
    )
    expected = [
        {
            "c": node_view(src),
            "r": {"relationship_id": rid, "type": "PURCHASED", "source": src, "target": tgt,
                  "properties": props},
            "p": node_view(tgt),
        }
        for rid, _, src, tgt, props in PURCHASES
        if PROPS[tgt]["category"] == "Technology"
    ]  # fmt: skip
    assert canonical(without_time(answer["results"])) == canonical(expected)


def test_the_locustfile_count(shop: httpx.Client) -> None:
    answer = ask(shop, "MATCH (n) RETURN count(n) LIMIT 1", format="json")
    assert answer["results"] == [len(NODES)]
    assert ask(shop, "MATCH (n) RETURN count(n) LIMIT 1", include_metadata=False).keys() == {
        "query_id",
        "results",
    }


# -- each supported construct, against rows computed in plain Python ---------------------

C = {i: p for i, _, p in CUSTOMERS}
P = {i: p for i, _, p in PRODUCTS}


def knows_within(start: str, low: int, high: int) -> list[str]:
    graph = nx.MultiDiGraph()
    graph.add_edges_from((s, t) for _, _, s, t, _ in KNOWS)
    reach = nx.single_source_shortest_path_length(graph, start, cutoff=high)
    return sorted(n for n, d in reach.items() if low <= d <= high)


CASES: list[tuple[str, str, dict[str, Any], Callable[[], list[Any]], bool]] = [
    ("AND", "MATCH (c:Customer) WHERE c.industry = 'Technology' AND c.value_score > 5 RETURN c.name",
     {}, lambda: [c["name"] for c in C.values() if c["industry"] == "Technology" and c["value_score"] > 5],
     False),
    ("OR", "MATCH (c:Customer) WHERE c.industry = 'Retail' OR c.value_score >= 9 RETURN c.name", {},
     lambda: [c["name"] for c in C.values() if c["industry"] == "Retail" or c["value_score"] >= 9],
     False),
    ("NOT", "MATCH (c:Customer) WHERE NOT c.industry = 'Technology' RETURN c.name", {},
     lambda: [c["name"] for c in C.values() if c["industry"] != "Technology"], False),
    ("IN", "MATCH (p:Product) WHERE p.category IN ['Health', 'Home'] RETURN p.name", {},
     lambda: [p["name"] for p in P.values() if p["category"] in ("Health", "Home")], False),
    ("< and <=", "MATCH (p:Product) WHERE p.price < 300 AND p.price <= 90 RETURN p.name", {},
     lambda: [p["name"] for p in P.values() if p["price"] <= 90], False),
    ("<>", "MATCH (p:Product) WHERE p.category <> 'Technology' RETURN p.name", {},
     lambda: [p["name"] for p in P.values() if p["category"] != "Technology"], False),
    ("CONTAINS", "MATCH (c:Customer) WHERE c.name CONTAINS 'o' RETURN c.name", {},
     lambda: [c["name"] for c in C.values() if "o" in c["name"]], False),
    ("STARTS WITH", "MATCH (p:Product) WHERE p.name STARTS WITH 'L' RETURN p.name", {},
     lambda: [p["name"] for p in P.values() if p["name"].startswith("L")], False),
    ("COUNT AS", "MATCH (c:Customer)-[:PURCHASED]->(p) RETURN c.name, count(p) AS bought", {},
     lambda: [{"c.name": C[s]["name"], "bought": sum(1 for _, _, x, _, _ in PURCHASES if x == s)}
              for s in {s for _, _, s, _, _ in PURCHASES}], False),
    ("SUM AS", "MATCH (c:Customer)-[r:PURCHASED]->(p) RETURN c.name, sum(r.amount) AS total", {},
     lambda: [{"c.name": C[s]["name"],
               "total": sum(pr["amount"] for _, _, x, _, pr in PURCHASES if x == s)}
              for s in {s for _, _, s, _, _ in PURCHASES}], False),
    ("ORDER BY", "MATCH (p:Product) RETURN p.name, p.price ORDER BY p.price DESC", {},
     lambda: [{"p.name": p["name"], "p.price": p["price"]}
              for p in sorted(P.values(), key=lambda p: -p["price"])], True),
    ("SKIP LIMIT", "MATCH (p:Product) RETURN p.name ORDER BY p.price SKIP 1 LIMIT 2", {},
     lambda: [p["name"] for p in sorted(P.values(), key=lambda p: p["price"])][1:3], True),
    ("DISTINCT", "MATCH (p:Product) RETURN DISTINCT p.category", {},
     lambda: sorted({p["category"] for p in P.values()}), False),
    ("id()", "MATCH (c:Customer) WHERE c.name = 'Globex' RETURN id(c)", {},
     lambda: [i for i, c in C.items() if c["name"] == "Globex"], False),
    ("type()", "MATCH (a)-[r]->(b) RETURN DISTINCT type(r)", {}, lambda: ["KNOWS", "PURCHASED"],
     False),
    ("[:A|B]", "MATCH (a:Customer)-[:PURCHASED|KNOWS]->(b) RETURN a.node_id, b.node_id", {},
     lambda: [{"a.node_id": s, "b.node_id": t} for _, _, s, t, _ in RELS], False),
    ("[*1..2]", "MATCH (a:Customer {name: 'Acme Corp'})-[:KNOWS*1..2]->(b) RETURN DISTINCT b.node_id",
     {}, lambda: knows_within("cust_1", 1, 2), False),
    ("$parameters", "MATCH (c:Customer) WHERE c.industry = $industry AND c.value_score > $min "
     "RETURN c.name", {"industry": "Technology", "min": 5},
     lambda: [c["name"] for c in C.values() if c["industry"] == "Technology" and c["value_score"] > 5],
     False),
    ("IN $list", "MATCH (p:Product) WHERE p.name IN $names RETURN p.price",
     {"names": ["Lamp", "Router", "Nope"]},
     lambda: [p["price"] for p in P.values() if p["name"] in ("Lamp", "Router")], False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "params", "expected", "ordered"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_supported_cypher(
    shop: httpx.Client,
    query: str,
    params: dict[str, Any],
    expected: Callable[[], list[Any]],
    ordered: bool,
) -> None:
    results = ask(shop, query, parameters=params)["results"]
    want = expected()
    assert want, "a case must expect some rows, or it proves nothing"
    if ordered:
        assert results == want
    else:
        assert canonical(results) == canonical(want)


REFUSED = [
    ("CREATE (n:Customer {name: 'x'}) RETURN n", "E031", "CREATE"),
    ("MATCH (n) DETACH DELETE n", "E031", "DETACH DELETE"),
    ("MATCH (n) SET n.name = 'x'", "E031", "SET"),
    ("MERGE (n:Thing)", "E031", "MERGE"),
    ("MATCH (n) REMOVE n.name", "E031", "REMOVE"),
    ("CALL db.labels()", "E031", "CALL"),
    ("LOAD CSV FROM 'x' AS row RETURN row", "E031", "LOAD CSV"),
    ("UNWIND [1] AS x RETURN x", "E031", "UNWIND"),
    ("MATCH (n) WITH n RETURN n", "E031", "WITH"),
    ("OPTIONAL MATCH (n) RETURN n", "E031", "OPTIONAL MATCH"),
    ("MATCH (n) RETURN n UNION MATCH (m) RETURN m", "E031", "UNION"),
    ("MATCH (a)-[*]->(b) RETURN b", "E031", "unbounded"),
    ("MATCH (a)-[*1..9]->(b) RETURN b", "E031", "deeper than 3"),
    ("MATCH (n) RETURN n.`name`", "E031", "backtick"),
    ("MATCH (n RETURN n", "E030", None),
    ("MATCH (n) WHERE n.name = 'unterminated RETURN n", "E030", None),
]


@pytest.mark.parametrize(("query", "code", "construct"), REFUSED)
def test_refused_cypher(shop: httpx.Client, query: str, code: str, construct: str | None) -> None:
    error = refused(shop, query)
    assert error["code"] == code
    assert error["documentation_url"].endswith(f"/errors/{code}")
    if construct is not None:
        assert construct in error["details"]["construct"]
        assert construct.split()[0] in error["message"]
    else:
        assert error["details"]["line"] == 1 and error["details"]["column"] >= 1


def test_the_docs_page_of_a_refusal_lists_what_is_supported(shop: httpx.Client) -> None:
    page = shop.get("/errors/E031")
    assert page.status_code == 200 and "STARTS WITH" in page.text and "OPTIONAL MATCH" in page.text


def test_bad_bodies_and_parameters(shop: httpx.Client) -> None:
    assert refused(shop, "MATCH (n) RETURN n", format="csv")["code"] == "E001"
    assert refused(shop, "MATCH (n) WHERE n.x = $x RETURN n")["code"] == "E032"
    error = refused(shop, "MATCH (n) RETURN n", parameters={"x": 1})
    assert error["code"] == "E032" and error["details"]["unused"] == ["x"]
    assert (
        refused(shop, "MATCH (n) WHERE n.x = $x RETURN n", parameters={"x": {"a": 1}})["code"]
        == "E032"
    )
    assert refused(shop, "MATCH (n) RETURN n " + "x" * 20_000)["code"] == "E033"


def test_an_injection_through_a_parameter_is_a_value(shop: httpx.Client) -> None:
    evil = "Acme Corp' OR 1=1 RETURN n //\" }) MATCH (m) DETACH DELETE m /* */ \\u0041 😀"
    answer = ask(
        shop, "MATCH (c:Customer) WHERE c.name = $name RETURN c.name", parameters={"name": evil}
    )
    assert answer["results"] == []
    answer = ask(shop, "MATCH (c:Customer) WHERE c.name = $name RETURN c.name",
                 parameters={"name": "Acme Corp"})  # fmt: skip
    assert answer["results"] == ["Acme Corp"]


def test_reading_needs_a_token(kg_api: LiveApi) -> None:
    with kg_api.client() as http:
        r = http.post("/knowledge-graph/query", json={"query": "MATCH (n) RETURN n"})
    assert r.status_code == 401


# -- tenancy, cache, limits ---------------------------------------------------------------


def test_another_client_sees_none_of_the_graph(
    shop: httpx.Client, client_for: Callable[..., tuple[httpx.Client, str]]
) -> None:
    other, _ = client_for()
    assert ask(other, "MATCH (n) RETURN count(n)")["results"] == [0]
    assert ask(other, "MATCH (n) WHERE n.node_id = 'cust_1' RETURN n")["results"] == []
    assert ask(other, "MATCH (a)-[r]->(b) RETURN r")["results"] == []
    assert ask(shop, "MATCH (n) RETURN count(n)")["results"] == [len(NODES)]


def test_the_cache_catches_up_after_a_write_without_reloading(
    services: Services, client_for: Callable[..., tuple[httpx.Client, str]]
) -> None:
    http, client_id = client_for()
    write_graph(services.sessions, client_id, CUSTOMERS)
    first = ask(http, "MATCH (c:Customer) RETURN count(c)")
    assert first["results"] == [len(CUSTOMERS)] and first["metadata"]["cache_hit"] is False
    second = ask(http, "MATCH (c:Customer) RETURN count(c)")
    assert second["metadata"]["cache_hit"] is True
    cached = graph_cache.process_cache(1).cached(client_id)  # the API runs in this process
    assert cached is not None
    graph_before = cached.graph

    version = write_graph(
        services.sessions,
        client_id,
        [("cust_9", "customer", {"name": "Newco", "industry": "Energy", "value_score": 5.0})],
    )
    after = ask(http, "MATCH (c:Customer) WHERE c.industry = 'Energy' RETURN c.name")
    assert after["results"] == ["Newco"]
    assert after["metadata"]["cache_hit"] is False
    assert after["metadata"]["graph_version"] == version
    again = ask(http, "MATCH (c:Customer) RETURN count(c)")
    assert again["results"] == [len(CUSTOMERS) + 1] and again["metadata"]["cache_hit"] is True
    cached = graph_cache.process_cache(1).cached(client_id)
    assert cached is not None and cached.graph is graph_before  # applied in place, not reloaded

    # a deletion reaches the cache through its tombstone (and takes the node's edges along)
    write_graph(services.sessions, client_id, [], [("k", "KNOWS", "cust_9", "cust_1", {})])
    assert ask(http, "MATCH (a)-[r:KNOWS]->(b) RETURN count(r)")["results"] == [1]
    with services.sessions.begin() as s:
        v = versions.begin_write(s, client_id)
        s.execute(
            text("DELETE FROM kg_nodes WHERE client_id = :c AND node_id = 'cust_9'"),
            {"c": client_id},
        )
        s.execute(text("INSERT INTO kg_tombstones (client_id, version, kind, item_id) "
                       "VALUES (:c, :v, 'node', 'cust_9')"), {"c": client_id, "v": v})  # fmt: skip
        versions.add_counts(s, client_id, nodes=-1, relationships=-1)
    gone = ask(http, "MATCH (a)-[r:KNOWS]->(b) RETURN count(r)")
    assert gone["results"] == [0] and gone["metadata"]["cache_hit"] is False
    assert ask(http, "MATCH (c:Customer) RETURN count(c)")["results"] == [len(CUSTOMERS)]


def test_a_long_query_is_stopped_and_the_api_keeps_answering(
    services: Services, kg_api: LiveApi, client_for: Callable[..., tuple[httpx.Client, str]]
) -> None:
    http, client_id = client_for()
    write_graph(
        services.sessions, client_id, [(f"n{i}", "thing", {"v": i % 7}) for i in range(3000)]
    )
    ask(http, "MATCH (n) RETURN count(n)")  # loaded: what follows is the query alone
    outcome: dict[str, Any] = {}

    def long_query() -> None:
        started = time.monotonic()
        r = http.post(
            "/knowledge-graph/query",
            json={"query": "MATCH (a) MATCH (b) WHERE a.v = b.v RETURN count(a)"},
        )
        outcome.update(response=r, took=time.monotonic() - started)

    thread = threading.Thread(target=long_query)
    thread.start()
    health_times = []
    with kg_api.client() as probe:
        while thread.is_alive():
            sent = time.monotonic()
            assert probe.get("/health/live").status_code == 200
            health_times.append(time.monotonic() - sent)
    thread.join(30)
    r = outcome["response"]
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "E033" and error["details"]["limit"] == "timeout_s"
    assert outcome["took"] < 5  # stopped at the 1 s limit, not run to its end
    assert len(health_times) >= 3 and max(health_times) < 0.5, health_times
    # and the process is fine afterwards
    assert ask(http, "MATCH (n) WHERE n.v = 3 RETURN count(n)")["results"] == [
        sum(1 for i in range(3000) if i % 7 == 3)
    ]
