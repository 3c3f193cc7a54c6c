"""Write business-graph.jsonl: the example business graph (deterministic; run it again to get
the same file).

    python examples/knowledge-graph/generate.py [OUTPUT]

Customers (industry, value_score, relationship_strength), products (category, price),
PURCHASED relationships (customer -> product, amount, date), feedback texts (text, rating)
with GAVE_FEEDBACK (customer -> feedback) and ABOUT (feedback -> product).
"""

from __future__ import annotations

import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path

SEED = 14
CUSTOMERS = 120
PRODUCTS = 60
PURCHASES = 600
FEEDBACK = 150

INDUSTRIES = ["Technology", "Healthcare", "Finance", "Retail", "Manufacturing", "Education"]
CATEGORIES = {
    "Technology": ["Cloud Analytics Suite", "Edge Gateway", "Data Pipeline Kit", "AI Assistant",
                   "Security Scanner", "Laptop Pro", "Sensor Pack", "API Platform"],
    "Services": ["Onboarding Package", "Premium Support", "Training Day", "Consulting Hours"],
    "Office": ["Ergonomic Chair", "Standing Desk", "Whiteboard Set", "Conference Phone"],
    "Hardware": ["Rack Server", "Network Switch", "Storage Array", "UPS Unit"],
}  # fmt: skip
NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
         "Soylent", "Hooli", "Pied Piper", "Vandelay", "Massive Dynamic", "Aperture", "Oscorp",
         "Gringotts", "Monarch", "Nakatomi", "Virtucon"]  # fmt: skip
SUFFIXES = ["Labs", "Systems", "Health", "Capital", "Retail", "Works", "Group", "Partners"]
GOOD = ["fast onboarding", "reliable uptime", "helpful support", "clear pricing", "great docs"]
BAD = ["slow delivery", "confusing setup", "billing surprises", "missing integrations"]


def describe(customer: dict[str, object]) -> str:
    """An account summary in words, from the customer's figures (what a CRM note says; what
    semantic search reads for a customer, docs/semantic-search.md). Draws no random numbers,
    so every other value of the file is what it was without it."""
    value, strength = float(customer["value_score"]), float(customer["relationship_strength"])  # type: ignore[arg-type]
    tier = "High-value" if value >= 80 else "Mid-value" if value >= 50 else "Low-value"
    bond = "strong" if strength >= 0.66 else "steady" if strength >= 0.33 else "weak"
    industry = str(customer["industry"]).lower()
    return f"{tier} customer in the {industry} sector ({customer['region']}), {bond} relationship"


def generate() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    rows: list[dict[str, object]] = []
    customers = []
    for i in range(1, CUSTOMERS + 1):
        node_id = f"customer-{i:03d}"
        customers.append(node_id)
        rows.append({"kind": "node", "node_id": node_id, "type": "customer", "properties": {
            "name": f"{rng.choice(NAMES)} {rng.choice(SUFFIXES)} {i}",
            "industry": rng.choice(INDUSTRIES),
            "value_score": round(rng.uniform(10, 100), 1),
            "relationship_strength": round(rng.uniform(0, 1), 2),
            "region": rng.choice(["EMEA", "AMER", "APAC"]),
        }})  # fmt: skip
        props: dict[str, object] = rows[-1]["properties"]  # type: ignore[assignment]
        props["description"] = describe(props)
    products = []
    for i in range(1, PRODUCTS + 1):
        category = rng.choice(list(CATEGORIES))
        node_id = f"product-{i:03d}"
        products.append(node_id)
        rows.append({"kind": "node", "node_id": node_id, "type": "product", "properties": {
            "name": f"{rng.choice(CATEGORIES[category])} {i}",
            "category": category,
            "price": round(rng.uniform(20, 5000), 2),
        }})  # fmt: skip
    start = date(2024, 1, 1)
    pairs = set()
    while len(pairs) < PURCHASES:
        pairs.add((rng.choice(customers), rng.choice(products)))
    ordered = sorted(pairs)
    for customer, product in ordered:
        rows.append({"kind": "relationship", "type": "PURCHASED", "source": customer,
                     "target": product, "properties": {
                         "amount": round(rng.uniform(50, 25000), 2),
                         "date": (start + timedelta(days=rng.randrange(540))).isoformat()}})  # fmt: skip
    for i in range(1, FEEDBACK + 1):
        customer, product = ordered[rng.randrange(len(ordered))]
        rating = rng.randint(1, 5)
        topic = rng.choice(GOOD if rating >= 3 else BAD)
        node_id = f"feedback-{i:03d}"
        rows.append({"kind": "node", "node_id": node_id, "type": "feedback", "properties": {
            "text": f"{'Happy with' if rating >= 3 else 'Unhappy about'} {topic} for {product}.",
            "rating": rating,
        }})  # fmt: skip
        rows.append({"kind": "relationship", "type": "GAVE_FEEDBACK", "source": customer,
                     "target": node_id, "properties": {}})  # fmt: skip
        rows.append({"kind": "relationship", "type": "ABOUT", "source": node_id,
                     "target": product, "properties": {}})  # fmt: skip
    return rows


def main() -> None:
    out = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("business-graph.jsonl")
    )
    with out.open("w", encoding="utf-8") as handle:
        for row in generate():
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
