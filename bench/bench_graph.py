"""Knowledge-graph benchmark: bulk import, Cypher over HTTP (warm and right after a write),
memory of the cached graph, against plain networkx + grand-cypher in this process.

Run by hand:  DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench.bench_graph

One run, on a private database and Redis (bench/services.py):
1. generate a business graph (customers, products, --relationships PURCHASED edges, seeded);
2. `aia-engine kg import` it (timed: the command a user runs, start-up included);
3. one uvicorn API; the guide's PURCHASED query with LIMIT 20 over HTTP, --queries times
   after a first (cold) one: p50 / p99;
4. --writes rounds of "update one customer over HTTP, then the same query": its latency
   (the cache catches up by the changed rows, not a reload);
5. the API process's resident memory before and after its cache loaded the graph, per 100k
   relationships;
6. the reference: the same graph built as a networkx MultiDiGraph in this process and the same
   query through grand-cypher directly, --queries times: p50 / p99.
Targets (issue 14): import of 100k relationships <= 10 s; warm p50 <= 25 ms; after a write
<= 2x warm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.bench_api import get_token, start_server
from bench.services import private_services

ROOT = Path(__file__).resolve().parents[1]
QUERY = (
    'MATCH (c:Customer)-[r:PURCHASED]->(p:Product) WHERE p.category = "Technology" '
    "RETURN c, r, p LIMIT 20"
)
INDUSTRIES = ["Technology", "Retail", "Finance", "Healthcare", "Manufacturing"]
CATEGORIES = ["Technology", "Office", "Services", "Hardware", "Training"]


def generate(
    path: Path, *, customers: int, products: int, relationships: int
) -> list[dict[str, Any]]:
    rnd = random.Random(14)
    rows: list[dict[str, Any]] = []
    for i in range(customers):
        rows.append(
            {
                "kind": "node",
                "node_id": f"customer_{i:06d}",
                "type": "customer",
                "properties": {
                    "name": f"Customer {i}",
                    "industry": rnd.choice(INDUSTRIES),
                    "value_score": round(rnd.uniform(1, 10), 1),
                },
            }
        )
    for i in range(products):
        rows.append(
            {
                "kind": "node",
                "node_id": f"product_{i:06d}",
                "type": "product",
                "properties": {"name": f"Product {i}", "category": rnd.choice(CATEGORIES)},
            }
        )
    for i in range(relationships):
        rows.append(
            {
                "kind": "relationship",
                "relationship_id": f"purchase_{i:07d}",
                "type": "PURCHASED",
                "source": f"customer_{rnd.randrange(customers):06d}",
                "target": f"product_{rnd.randrange(products):06d}",
                "properties": {
                    "amount": round(rnd.uniform(10, 5000), 2),
                    "date": f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                },
            }
        )
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return rows  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def reference(rows: list[dict[str, Any]], queries: int) -> dict[str, float]:
    """networkx + grand-cypher in this process: the same graph, the same query."""
    import networkx as nx
    from grandcypher import GrandCypher

    from aia_engine.graph.model import labels_for

    g = nx.MultiDiGraph()
    for row in rows:
        if row["kind"] == "node":
            g.add_node(row["node_id"], **row["properties"], node_id=row["node_id"],
                       type=row["type"], __labels__=set(labels_for(row["type"])))  # fmt: skip
        else:
            g.add_edge(row["source"], row["target"], key=row["relationship_id"],
                       **row["properties"], relationship_id=row["relationship_id"],
                       __labels__={row["type"]})  # fmt: skip
    times = []
    for _ in range(queries + 1):
        t0 = time.perf_counter()
        found = GrandCypher(g).run(QUERY)
        times.append((time.perf_counter() - t0) * 1000)
    assert len(next(iter(found.values()))) == 20, found
    ours = _engine_in_process(rows, queries)
    return {"p50_ms": pct(times[1:], 0.5), "p99_ms": pct(times[1:], 0.99), **ours}


def _engine_in_process(rows: list[dict[str, Any]], queries: int) -> dict[str, float]:
    """The engine's own query path (aia_engine.graph.query.query_graph) on the same graph in this
    process: no HTTP, no database read; what the API adds is the difference."""
    from datetime import UTC, datetime

    import networkx as nx

    from aia_engine.graph.cache import edge_attributes, node_attributes
    from aia_engine.graph.query import query_graph
    from aia_engine.settings import get_settings

    now = datetime.now(UTC)
    g = nx.MultiDiGraph()
    for row in rows:
        if row["kind"] == "node":
            g.add_node(row["node_id"], **node_attributes(row["node_id"], row["type"],
                                                         row["properties"], now))  # fmt: skip
        else:
            g.add_edge(row["source"], row["target"], key=row["relationship_id"],
                       **edge_attributes(row["relationship_id"], row["type"], row["source"],
                                         row["target"], row["properties"]))  # fmt: skip
    settings = get_settings()
    times = []
    for _ in range(queries + 1):
        t0 = time.perf_counter()
        found = query_graph(g, QUERY, settings=settings)
        times.append((time.perf_counter() - t0) * 1000)
    assert len(found.results) == 20
    return {"engine_p50_ms": pct(times[1:], 0.5), "engine_p99_ms": pct(times[1:], 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--relationships", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writes", type=int, default=30)
    args = parser.parse_args()
    with private_services("graph") as svc:
        from aia_engine.auth.clients import create_client
        from aia_engine.db.session import make_engine, make_sessions
        from aia_engine.embedded import free_port
        from aia_engine.settings import get_settings

        os.environ.setdefault("JWT_SECRET_KEY", "bench-" + "0123456789abcdef" * 4)
        big = {"per_hour": 10**9, "per_minute": 10**9, "burst": 10**9, "max_active_tasks": 10**9}
        os.environ["AIA_RATE_LIMIT_TIERS"] = json.dumps(
            dict.fromkeys(("free", "developer", "business", "enterprise"), big)
        )
        get_settings.cache_clear()
        creds = create_client(
            make_sessions(make_engine(get_settings())), name="bench", tier="enterprise"
        )
        svc.tmp.mkdir(parents=True, exist_ok=True)
        data = svc.tmp / "graph.jsonl"
        rows = generate(data, customers=args.customers, products=args.products,
                        relationships=args.relationships)  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli", "kg", "import", str(data), "--client", creds.client_id,
             "--no-resume"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
        )  # fmt: skip
        import_s = time.perf_counter() - t0
        port = free_port()
        server = start_server("api.app:app_from_env", port)
        try:
            token = get_token(port, creds)
            api = psutil.Process(server.pid)
            rss_before = api.memory_info().rss
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=60,
                headers={"Authorization": f"Bearer {token}"},
            ) as http:  # fmt: skip
                t0 = time.perf_counter()
                first = http.post("/knowledge-graph/query", json={"query": QUERY})
                cold_ms = (time.perf_counter() - t0) * 1000
                first.raise_for_status()
                assert len(first.json()["results"]) == 20, first.text[:500]
                rss_after = api.memory_info().rss
                warm = []
                for _ in range(args.queries):
                    t0 = time.perf_counter()
                    http.post("/knowledge-graph/query", json={"query": QUERY}).raise_for_status()
                    warm.append((time.perf_counter() - t0) * 1000)
                after_write, hits = [], 0
                for i in range(args.writes):
                    http.post("/knowledge-graph/entities", json={"entities": [{
                        "node_id": "customer_000000", "type": "customer",
                        "properties": {"name": "Customer 0", "industry": "Technology",
                                       "value_score": float(i)}}]}).raise_for_status()  # fmt: skip
                    t0 = time.perf_counter()
                    answer = http.post("/knowledge-graph/query", json={"query": QUERY})
                    after_write.append((time.perf_counter() - t0) * 1000)
                    answer.raise_for_status()
                    hits += bool(answer.json()["metadata"]["cache_hit"])
                    http.post("/knowledge-graph/query", json={"query": QUERY})  # warm again
        finally:
            server.terminate()
            server.wait(30)
        ref = reference(rows, args.queries)
        per_100k = (rss_after - rss_before) / args.relationships * 100_000 / 2**20
        p50, p99 = pct(warm, 0.5), pct(warm, 0.99)
        w50 = pct(after_write, 0.5)
        print(f"graph: {args.customers + args.products} nodes, {args.relationships} relationships")
        print(
            f"import (aia-engine kg import, whole command): {import_s:.2f} s "
            f"({len(rows) / import_s:,.0f} rows/s)  target <= 10 s"
        )
        print(f"HTTP query, cold (cache loads the graph): {cold_ms:.1f} ms")
        print(
            f"HTTP query, warm, {args.queries} runs: p50 {p50:.2f} ms, p99 {p99:.2f} ms  "
            "target p50 <= 25 ms"
        )
        print(
            f"HTTP query right after a one-entity write, {args.writes} runs: p50 {w50:.2f} ms, "
            f"p99 {pct(after_write, 0.99):.2f} ms, {w50 / p50:.2f}x warm (target <= 2x); "
            f"cache_hit true in {hits}/{args.writes}"
        )
        print(
            f"API memory for the cached graph: {(rss_after - rss_before) / 2**20:.1f} MiB "
            f"({per_100k:.1f} MiB per 100k relationships)"
        )
        print(f"reference, networkx + grand-cypher in-process: p50 {ref['p50_ms']:.2f} ms, "
              f"p99 {ref['p99_ms']:.2f} ms; engine over HTTP / reference p50: "
              f"{p50 / ref['p50_ms']:.2f}")  # fmt: skip
        print(f"the engine's query path in-process (no HTTP, no database): p50 "
              f"{ref['engine_p50_ms']:.2f} ms, p99 {ref['engine_p99_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
