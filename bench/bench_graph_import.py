"""Bulk graph import speed: `aia-engine kg import` of a generated graph (run by hand).

    python -m bench.bench_graph_import --relationships 100000 --nodes 10000

Generates a JSON Lines graph (nodes with a few properties, relationships with an amount and a
date between random nodes), creates a private database and a client, then times the import
command end to end (a subprocess, as an operator runs it: reading, checking, COPY, upserts,
events), and a second run of the same file with --no-resume (every row unchanged).
Target: 100k relationships (+ their nodes) in <= 10 s.
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

from aia_engine.auth.clients import create_client
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.settings import get_settings
from bench.services import private_services

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, nodes: int, relationships: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(nodes):
            kind = "customer" if i % 3 else "product"
            props = {"name": f"{kind} {i}", "score": round(rng.uniform(0, 100), 2),
                     "category": rng.choice(["Technology", "Retail", "Finance"])}  # fmt: skip
            out.write(json.dumps({"kind": "node", "node_id": f"n{i}", "type": kind,
                                  "properties": props}) + "\n")  # fmt: skip
        for i in range(relationships):
            out.write(json.dumps({
                "kind": "relationship", "relationship_id": f"r{i}", "type": "PURCHASED",
                "source": f"n{rng.randrange(nodes)}", "target": f"n{rng.randrange(nodes)}",
                "properties": {"amount": round(rng.uniform(1, 1000), 2),
                               "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"},
            }) + "\n")  # fmt: skip


def run_import(path: Path, client: str, chunk: int, *extra: str) -> tuple[float, dict[str, object]]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(path), "--client", client,
         "--chunk-size", str(chunk), "--json", "--no-progress", *extra],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relationships", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    args = parser.parse_args()
    with private_services("kgimport") as svc:
        svc.tmp.mkdir(parents=True, exist_ok=True)
        os.environ["AIA_DATA_DIR"] = str(svc.tmp / "data")
        path = svc.tmp / "graph.jsonl"
        generate(path, args.nodes, args.relationships)
        rows = args.nodes + args.relationships
        sessions = make_sessions(make_engine(get_settings(), pool_size=1))
        client = create_client(sessions, name="bench-kg", tier="developer", scopes="read write")
        sessions.kw["bind"].dispose()
        first, summary = run_import(path, client.client_id, args.chunk_size)
        again, unchanged = run_import(path, client.client_id, args.chunk_size, "--no-resume")
        print(
            f"import of {args.nodes} nodes + {args.relationships} relationships "
            f"({path.stat().st_size / 1e6:.1f} MB), chunks of {args.chunk_size}:"
        )
        print(
            f"  first run : {first:6.2f} s wall (command: {summary['elapsed_s']} s), "
            f"{rows / first:,.0f} rows/s; created {summary['created']}, "
            f"events {summary['events']}"
        )
        print(
            f"  re-run    : {again:6.2f} s wall (command: {unchanged['elapsed_s']} s), "
            f"{rows / again:,.0f} rows/s; unchanged {unchanged['unchanged']}, "
            f"events {unchanged['events']}"
        )
        print(f"  target: 100k relationships in <= 10 s: {'met' if first <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
