"""Embedding benchmark (issue 15): the encoder's throughput in entities/s, its load time and memory.

Run by hand (no services needed):  python -m bench.bench_embeddings [--threads 2] [--rounds 3]

1. model load: a fresh process imports aia_engine.search.encoder and loads the model (wall time
   of `Encoder().load()`, onnxruntime's import included), and its resident memory before/after;
2. the example graph's entities (examples/knowledge-graph/business-graph.jsonl, 330 nodes) and
   2,000 generated ones (customers, products, feedback of 1 to 12 sentences, accounts with long
   descriptions; seeded), each turned into its text by entity_text, then encoded with encode()
   at batch sizes 1, 16, 32 and 64 (AIA_SEARCH_ENCODER_BATCH_SIZE): entities/s, best and median of
   --rounds; plus one encode() call per entity (what a query costs);
3. the process's peak resident memory.
Target (issue 15): >= 200 entities/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from aia_engine.search.encoder import NAME, Encoder
from aia_engine.search.texts import entity_text
from aia_engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
WORDS = [
    "customer",
    "support",
    "onboarding",
    "invoice",
    "delivery",
    "late",
    "quality",
    "excellent",
    "slow",
    "price",
    "renewal",
    "contract",
    "platform",
    "integration",
    "data",
    "pipeline",
    "analytics",
    "dashboard",
    "security",
    "audit",
    "cloud",
    "storage",
    "migration",
    "training",
    "team",
    "response",
    "ticket",
    "outage",
    "feature",
    "request",
    "roadmap",
    "value",
    "growth",
    "churn",
    "risk",
    "upsell",
    "technology",
    "finance",
    "retail",
    "healthcare",
    "manufacturing",
    "region",
]
_LOAD = """
import json, time, psutil
p = psutil.Process()
before = p.memory_info().rss
t = time.perf_counter()
from aia_engine.search.encoder import Encoder
e = Encoder(threads={threads})
e.load()
load = time.perf_counter() - t
e.encode(["warm up"])
print(json.dumps({{"load_s": load, "rss_before": before, "rss_after": p.memory_info().rss}}))
"""


def example_texts(settings: Settings) -> list[str]:
    texts = []
    for line in EXAMPLE.read_text().splitlines():
        item = json.loads(line)
        if item["kind"] == "node":
            texts.append(entity_text(item["type"], item["properties"], settings))
    return texts


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 18))).capitalize() + "."


def generated_texts(settings: Settings, n: int, seed: int = 15) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        kind = rng.choice(["customer", "product", "feedback", "account"])
        if kind == "customer":
            props: dict[str, object] = {
                "name": f"{rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella'])} {i}",
                "industry": rng.choice(["Technology", "Finance", "Retail", "Healthcare"]),
                "region": rng.choice(["EMEA", "AMER", "APAC"]),
                "value_score": round(rng.uniform(0, 100), 1),
            }
        elif kind == "product":
            props = {"name": f"Product {i}", "category": rng.choice(WORDS), "price": i * 1.5}
        elif kind == "feedback":
            props = {
                "rating": rng.randint(1, 5),
                "text": " ".join(sentence(rng) for _ in range(rng.randint(1, 12))),
            }
        else:
            props = {
                "name": f"Account {i}",
                "description": " ".join(sentence(rng) for _ in range(20)),
            }
        texts.append(entity_text(kind, props, settings))
    return texts


def rate(
    encoder: Encoder, texts: list[str], rounds: int, *, one_call_each: bool
) -> dict[str, float]:
    """Entities/s (best and median of the rounds, wall time) and the CPU milliseconds one entity
    costs (median): on a shared machine the wall rate falls with the neighbours' load, the CPU
    cost much less."""
    rates, cpu = [], []
    process = psutil.Process()
    for _ in range(rounds):
        cpu_start, start = sum(process.cpu_times()[:2]), time.perf_counter()
        if one_call_each:
            for text in texts:
                encoder.encode([text])
        else:
            encoder.encode(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
        cpu.append((sum(process.cpu_times()[:2]) - cpu_start) / len(texts) * 1000)
    return {
        "best": max(rates),
        "median": statistics.median(rates),
        "cpu_ms": statistics.median(cpu),
    }


def show(what: str, figures: dict[str, float]) -> None:
    print(
        f"  {what:<32} {figures['best']:7.1f} entities/s best, {figures['median']:7.1f} median, "
        f"{figures['cpu_ms']:.2f} CPU ms each"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--generated", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings()

    loads = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _LOAD.format(threads=args.threads)],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout
        )
        for _ in range(3)
    ]
    load_s = statistics.median(x["load_s"] for x in loads)
    model_mib = statistics.median((x["rss_after"] - x["rss_before"]) / 2**20 for x in loads)
    print(f"encoder {NAME}, {args.threads} intra-op threads, {psutil.cpu_count()} cores")
    print(
        f"model load (fresh process, import included): {load_s * 1000:.0f} ms (median of 3); "
        f"resident memory +{model_mib:.0f} MiB after load and a first encode"
    )

    sets = {
        "example graph": example_texts(settings),
        "generated": generated_texts(settings, args.generated),
    }
    results = []
    for label, texts in sets.items():
        chars = statistics.mean(len(t) for t in texts)
        print(f"\n{label}: {len(texts)} entities, mean text {chars:.0f} characters")
        print(f"  load average now: {psutil.getloadavg()[0]:.2f}")
        for batch in (1, 16, 32, 64):
            encoder = Encoder(threads=args.threads, batch_size=batch)
            encoder.encode(texts[:8])  # load and warm up
            figures = rate(encoder, texts, args.rounds, one_call_each=False)
            results.append({"set": label, "batch": batch, **figures})
            show(f"encode(all), batch size {batch}:", figures)
        encoder = Encoder(threads=args.threads, batch_size=32)
        figures = rate(encoder, texts, args.rounds, one_call_each=True)
        results.append({"set": label, "batch": "one call each", **figures})
        show("one encode() call per entity:", figures)
    peak = psutil.Process().memory_info().rss / 2**20
    print(f"\nthis process's resident memory at the end: {peak:.0f} MiB")
    print(
        json.dumps(
            {"load_ms": load_s * 1000, "model_mib": model_mib, "results": results, "rss_mib": peak}
        )
    )


if __name__ == "__main__":
    main()
