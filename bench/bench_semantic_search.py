"""Semantic search benchmark: POST /knowledge-graph/semantic-search over HTTP at 10k and 100k
entities, p50 / p99, the query's own embedding included.

Run by hand (after `pip install -e .`, nothing else running on the machine):

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m bench.bench_semantic_search
    python -m bench.bench_semantic_search --embedded      # the embedded PostgreSQL (pgvector)

One run, on a private database and Redis (bench/services.py), for each size (--sizes):
1. generate business entities (customers, products, feedback texts; seeded) up to the size and
   `aia-engine kg import` them (the graph grows: 10k, then 90k more);
2. store their vectors **directly, without the embedding workers**, through the indexer's own
   storage step (`aia_engine.search.indexing.embed_client`, so the rows, the `vec` column on
   pgvector and the embedding version are what the workers write) with a stand-in encoder:
   the first --real entities' texts are embedded by the real model, every other entity gets
   the vector of a real one of its kind plus Gaussian noise, normalised (clustered like real
   data, which is what HNSW's recall depends on; embedding 100k texts for real takes ~7 min
   on 2 cores, and is measured by the indexing benchmark, not here);
3. one uvicorn API process; a first search (loads the model and, on the numpy path, the
   client's vectors), then --queries searches over HTTP cycling through the labelled queries
   (tests/integration/api/semantic_search_labels.json), limit 20: without explanations, and
   with them (the default; the top AIA_SEARCH_EXPLAIN_TOP results' fields, cached by text);
4. on pgvector: recall@10 of the HNSW path against the exact numpy scan, same queries.
Target (issue 15): p50 <= 30 ms at 100k entities, the query's embedding included.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.bench_api import get_token, start_server
from bench.services import private_services

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "integration" / "api" / "semantic_search_labels.json"
INDUSTRIES = ["Technology", "Healthcare", "Finance", "Retail", "Manufacturing", "Education"]
PRODUCTS = {
    "Technology": ["Cloud Analytics Suite", "Data Pipeline Kit", "AI Assistant", "Laptop Pro"],
    "Services": ["Onboarding Package", "Premium Support", "Training Day", "Consulting Hours"],
    "Office": ["Ergonomic Chair", "Standing Desk", "Whiteboard Set", "Conference Phone"],
    "Hardware": ["Rack Server", "Network Switch", "Storage Array", "UPS Unit"],
}
NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Hooli",
         "Vandelay", "Aperture", "Oscorp", "Monarch", "Nakatomi", "Virtucon"]  # fmt: skip
GOOD = ["fast onboarding", "reliable uptime", "helpful support", "clear pricing", "great docs"]
BAD = ["slow delivery", "confusing setup", "billing surprises", "missing integrations"]
NOISE = 0.5
"""Norm of the noise added to a real vector (before normalising): cosine ~0.9 to its source."""


def entity(i: int, rnd: random.Random) -> dict[str, Any]:
    kind = i % 10
    if kind < 5:
        return {"kind": "node", "node_id": f"customer_{i:06d}", "type": "customer",
                "properties": {"name": f"{rnd.choice(NAMES)} {i}",
                               "industry": rnd.choice(INDUSTRIES),
                               "region": rnd.choice(["EMEA", "AMER", "APAC"]),
                               "value_score": round(rnd.uniform(10, 100), 1)}}  # fmt: skip
    if kind < 8:
        category = rnd.choice(list(PRODUCTS))
        return {"kind": "node", "node_id": f"product_{i:06d}", "type": "product",
                "properties": {"name": f"{rnd.choice(PRODUCTS[category])} {i}",
                               "category": category, "price": round(rnd.uniform(20, 5000), 2)}}  # fmt: skip
    rating = rnd.randint(1, 5)
    topic = rnd.choice(GOOD if rating >= 3 else BAD)
    mood = "Happy with" if rating >= 3 else "Unhappy about"
    return {"kind": "node", "node_id": f"feedback_{i:06d}", "type": "feedback",
            "properties": {"text": f"{mood} {topic} for product {i % 997}.", "rating": rating}}  # fmt: skip


class Seeded:
    """The stand-in encoder of step 2: real vectors for the texts it was seeded with, a noisy
    copy of one of them (same entity type, picked by the text's hash) for any other text."""

    def __init__(self, real: Any) -> None:
        self.name, self.dim, self.real = real.name, real.dim, real
        self.seeds: dict[str, list[np.ndarray]] = {}
        self.known: dict[str, np.ndarray] = {}

    def seed(self, texts: Sequence[str]) -> None:
        for text, vector in zip(texts, self.real.encode(list(texts)), strict=True):
            self.known[text] = vector
            self.seeds.setdefault(kind_of(text), []).append(vector)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if text in self.known:
                out[i] = self.known[text]
                continue
            digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            pool = self.seeds[kind_of(text)]
            rng = np.random.default_rng(digest)
            v = pool[digest % len(pool)] + rng.standard_normal(self.dim) * NOISE / self.dim**0.5
            out[i] = v / np.linalg.norm(v)
        return out


def kind_of(text: str) -> str:
    """The entity type an entity text starts with ("customer: Acme 5; industry: ...")."""
    return text.split(";")[0].split(":")[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def grow(
    svc: Any, client_id: str, start: int, stop: int, rnd: random.Random
) -> list[dict[str, Any]]:
    rows = [entity(i, rnd) for i in range(start, stop)]
    path = svc.tmp / f"entities-{start}-{stop}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(path), "--client", client_id,
         "--no-resume", "--json"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return rows


def store_vectors(sessions: Any, client_id: str, settings: Any, encoder: Seeded) -> float:
    from aia_engine.search import indexing

    t0 = time.perf_counter()
    remaining = True
    while remaining:
        _, remaining = indexing.embed_client(
            sessions, client_id, settings, encoder=encoder, budget_s=60
        )
    took = time.perf_counter() - t0
    # The steady state: no autovacuum/analyze of the freshly written rows during the timing.
    with sessions.kw["bind"].connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE kg_embeddings, kg_nodes"
        )
    return took


def measure(port: int, token: str, queries: list[str], runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=120,
        headers={"Authorization": f"Bearer {token}"},
    ) as http:  # fmt: skip
        t0 = time.perf_counter()
        first = http.post("/knowledge-graph/semantic-search", json={"query": queries[0]})
        out["cold_ms"] = (time.perf_counter() - t0) * 1000
        first.raise_for_status()
        assert len(first.json()["results"]) == 20, first.text[:500]
        for explain in (False, True):
            took, server = [], []
            for i in range(runs):
                body = {"query": queries[i % len(queries)], "limit": 20,
                        "include_explanations": explain}  # fmt: skip
                t0 = time.perf_counter()
                r = http.post("/knowledge-graph/semantic-search", json=body)
                took.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                server.append(float(r.json()["search_time_ms"]))
            tag = "explained" if explain else "plain"
            out[f"{tag}_p50"], out[f"{tag}_p99"] = pct(took, 0.5), pct(took, 0.99)
            out[f"{tag}_server_p50"] = pct(server, 0.5)
    return out


def hnsw_recall(sessions: Any, client_id: str, queries: list[str], model: str) -> float | None:
    """recall@10 of the pgvector HNSW path against the exact numpy scan (None without pgvector)."""
    from aia_engine.search import encoder as encoders
    from aia_engine.search import store

    found = []
    with sessions.begin() as session:
        if not store.has_vector_column(session):
            return None
        for vector in encoders.get_encoder().encode(queries):
            args = {"limit": 10, "threshold": -1.0, "model": model}
            hnsw = {
                h.node_id
                for h in store.nearest(session, client_id, vector, path="pgvector", **args)
            }
            exact = {
                h.node_id for h in store.nearest(session, client_id, vector, path="numpy", **args)
            }
            found.append(len(hnsw & exact) / 10)
    return sum(found) / len(found)


@contextlib.contextmanager
def database(embedded: bool, tmp: Path) -> Iterator[str]:
    """DATABASE_URL's server, or a fresh embedded PostgreSQL (it ships pgvector)."""
    if not embedded:
        yield os.environ["DATABASE_URL"]
        return
    from aia_engine.embedded import start_postgres

    uri, server = start_postgres(tmp / "pg")
    os.environ["DATABASE_URL"] = uri
    try:
        yield uri
    finally:
        stop = getattr(server, "cleanup", None) or getattr(server, "stop", None)
        if callable(stop):
            stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", type=int, default=2000, help="entities embedded for real")
    parser.add_argument("--embedded", action="store_true", help="embedded PostgreSQL (pgvector)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    queries = [q["query"] for q in json.loads(LABELS.read_text())["queries"]]
    tmp = Path(f"/tmp/aia-bench-search-db-{os.getpid()}")
    with database(args.embedded, tmp), private_services("search") as svc:
        from aia_engine.auth.clients import create_client
        from aia_engine.db.session import make_engine, make_sessions
        from aia_engine.embedded import free_port
        from aia_engine.search import encoder as encoders
        from aia_engine.search import texts
        from aia_engine.settings import get_settings

        os.environ.setdefault("JWT_SECRET_KEY", "bench-" + "0123456789abcdef" * 4)
        big = {"per_hour": 10**9, "per_minute": 10**9, "burst": 10**9, "max_active_tasks": 10**9}
        os.environ["AIA_RATE_LIMIT_TIERS"] = json.dumps(
            dict.fromkeys(("free", "developer", "business", "enterprise"), big)
        )
        os.environ["AIA_SEARCH_EMBED_BATCH"] = "1024"
        get_settings.cache_clear()
        settings = get_settings()
        sessions = make_sessions(make_engine(settings))
        creds = create_client(sessions, name="bench", tier="enterprise")
        svc.tmp.mkdir(parents=True, exist_ok=True)
        encoder = Seeded(encoders.get_encoder())
        rnd = random.Random(15)
        have = 0
        path = "pgvector" if args.embedded else "numpy"
        for size in sizes:
            rows = grow(svc, creds.client_id, have, size, rnd)
            have = size
            real = rows[: max(0, args.real - len(encoder.known))]
            encoder.seed([texts.entity_text(r["type"], r["properties"], settings) for r in real])
            store_s = store_vectors(sessions, creds.client_id, settings, encoder)
            port = free_port()
            server = start_server("api.app:app_from_env", port, env={"AIA_LOG_LEVEL": "WARNING"})
            try:
                figures = measure(port, get_token(port, creds), queries, args.queries)
            finally:
                server.terminate()
                server.wait(30)
            recall = hnsw_recall(sessions, creds.client_id, queries, encoder.name)
            print(f"{size:,} entities ({path}); vectors stored in {store_s:.1f} s "
                  f"({len(encoder.known)} texts embedded for real)")  # fmt: skip
            print(f"  first search (loads the model{'' if args.embedded else ' and vectors'}): "
                  f"{figures['cold_ms']:.0f} ms")  # fmt: skip
            for tag, what in (("plain", "no explanations"), ("explained", "explanations")):
                print(
                    f"  HTTP, limit 20, {what}, {args.queries} runs: p50 "
                    f"{figures[f'{tag}_p50']:.1f} ms, p99 {figures[f'{tag}_p99']:.1f} ms "
                    f"(search_time_ms p50 {figures[f'{tag}_server_p50']:.1f})  target p50 <= 30 ms"
                )
            if recall is not None:
                print(
                    f"  HNSW recall@10 against exact search, {len(queries)} queries: {recall:.3f}"
                )


if __name__ == "__main__":
    main()
