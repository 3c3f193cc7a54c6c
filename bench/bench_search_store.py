"""Semantic-search storage benchmark: `aia_engine.search.store.nearest()` in process (no HTTP, no
query embedding) over N random unit vectors of 384 dimensions, on both storage paths, and the
recall@10 of the HNSW index against the exact scan.

Run by hand:  python -m bench.bench_search_store [--sizes 10000 100000] [--queries 200]

It starts the embedded PostgreSQL of `aia-engine dev` (it ships pgvector) in a temporary
directory, migrates a fresh database, and for each size:
1. writes N nodes and their vectors straight into kg_nodes / kg_embeddings (real[] and the
   vector column), then builds the HNSW index (pgvector's defaults: m 16, ef_construction 64);
2. pgvector path: --queries searches (limit 10, no filter, ef_search 100 as AIA_SEARCH_HNSW_EF_SEARCH's
   default), p50 / p99;
3. numpy path: the first search (it loads the client's vectors into the process) timed on its
   own, then --queries warm searches, p50 / p99;
4. recall@10 of the pgvector answers against the numpy (exact) ones, and the same with
   ef_search 200: over all queries, the near ones, the random ones (random directions in 384
   dimensions have no near neighbours: the worst case for HNSW, unlike real text embeddings).
Queries are half random directions and half near a stored vector (a stored vector plus 5 %
noise), as real queries are near their answers.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from aia_engine.db.migrate import alembic_config
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.embedded import start_postgres
from aia_engine.search.indexing import vector_literal
from aia_engine.search.store import default_cache, nearest
from aia_engine.settings import Settings

DIM = 384
CLIENT = "bench"


def unit(n: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def fill(plain_url: str, vectors: np.ndarray) -> float:
    """Write the nodes and vectors with COPY, then build the HNSW index; seconds it took."""
    began = time.perf_counter()
    with psycopg.connect(plain_url) as conn:
        conn.execute("TRUNCATE kg_embeddings, kg_nodes, kg_embedding_state, kg_graphs CASCADE")
        conn.execute("DROP INDEX IF EXISTS ix_kg_embeddings_vec")
        with conn.cursor() as cur:
            with cur.copy(
                "COPY kg_nodes (client_id, node_id, type, properties, version) FROM STDIN"
            ) as cp:
                for i in range(len(vectors)):
                    cp.write_row((CLIENT, f"n{i}", "customer", json.dumps({"name": f"n{i}"}), 1))
            with cur.copy(
                "COPY kg_embeddings (client_id, node_id, status, model, text_hash, embedding, vec, seq)"
                " FROM STDIN"
            ) as cp:
                for i, row in enumerate(vectors):
                    literal = vector_literal(row)
                    cp.write_row((CLIENT, f"n{i}", "embedded", "bench", "h", literal,
                                  "[" + literal[1:-1] + "]", 1))  # fmt: skip
        conn.execute("INSERT INTO kg_graphs (client_id, version, nodes) VALUES (%s, 1, %s)",
                     (CLIENT, len(vectors)))  # fmt: skip
        conn.execute(
            "INSERT INTO kg_embedding_state (client_id, version) VALUES (%s, 1)", (CLIENT,)
        )
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX ix_kg_embeddings_vec ON kg_embeddings USING hnsw (vec vector_cosine_ops)"
        )
        conn.execute("ANALYZE kg_embeddings")
        conn.commit()
    return time.perf_counter() - began


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def run_size(url: str, n: int, queries: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors = unit(n, rng)
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    load_s = fill(plain, vectors)
    noise = unit(queries, rng)
    picks = rng.integers(0, n, queries)
    qs = [noise[k] if k % 2 else vectors[picks[k]] + 0.05 * noise[k] for k in range(queries)]
    engine = make_engine(Settings(database_url=url), pool_size=1)
    sessions = make_sessions(engine)
    default_cache().clear()
    out: dict[str, Any] = {"vectors": n, "load_and_index_s": round(load_s, 1)}
    answers: dict[str, list[list[str]]] = {}
    try:
        for label, path, ef in (("pgvector", "pgvector", 100), ("pgvector_ef200", "pgvector", 200),
                                ("numpy", "numpy", 100)):  # fmt: skip
            times, found = [], []
            with sessions() as session:
                if path == "numpy":
                    began = time.perf_counter()
                    nearest(session, CLIENT, qs[0], limit=10, threshold=-1.0, path="numpy")
                    out["numpy_first_search_s"] = round(time.perf_counter() - began, 2)
                for q in qs:
                    began = time.perf_counter()
                    hits = nearest(session, CLIENT, q, limit=10, threshold=-1.0, path=path,  # type: ignore[arg-type]
                                   ef_search=ef)  # fmt: skip
                    times.append(time.perf_counter() - began)
                    found.append([h.node_id for h in hits])
                session.rollback()
            answers[label] = found
            out[label] = percentiles(times)
    finally:
        engine.dispose()
    for label in ("pgvector", "pgvector_ef200"):
        recall = [
            len(set(a) & set(e)) / 10 for a, e in zip(answers[label], answers["numpy"], strict=True)
        ]
        out[label]["recall_at_10"] = round(float(np.mean(recall)), 4)
        out[label]["recall_at_10_near"] = round(float(np.mean(recall[0::2])), 4)
        out[label]["recall_at_10_random"] = round(float(np.mean(recall[1::2])), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aia-bench-search-") as tmp:
        admin, server = start_postgres(Path(tmp) / "pg")
        try:
            name = f"bench_search_{secrets.token_hex(3)}"
            plain = (
                make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
            )
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = make_url(admin).set(database=name).render_as_string(hide_password=False)
            command.upgrade(alembic_config(url), "head")
            results = [run_size(url, n, args.queries, args.seed) for n in args.sizes]
        finally:
            server.cleanup()  # type: ignore[attr-defined]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
