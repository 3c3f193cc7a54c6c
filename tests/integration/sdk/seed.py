"""What the guide's "Complete SDK Example" needs in a client's account, written over HTTP
(plain httpx and a bearer token, as any API user would):

- knowledge-graph customers with a `name` (the example prints `entity_data['name']` of each
  semantic-search hit), technology customers described as high-value so the guide's query
  "high-value customers in technology sector" ranks them first, and products;
- PURCHASED relationships dated in the current month (UTC) up to today, so the dashboard's
  reference month is this month and `metrics.revenue.current_month` is their sum, not null
  (docs/business-intelligence.md: the reference date is the latest purchase date);
- then, with `wait_searchable`, until every customer is embedded (an embedding worker on the
  queue aia.embeddings must be running) and the guide's query finds them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx

from tests.conftest import wait_until

GUIDE_QUERY = "high-value customers in technology sector"
CUSTOMERS = [
    ("Initech Cloud Systems", "Technology", 94.5),
    ("Hooli Data Platforms", "Technology", 91.0),
    ("Pied Piper Networks", "Technology", 88.2),
    ("Globex Software Labs", "Technology", 86.7),
    ("Soylent Grocers", "Retail", 41.3),
]
PRODUCTS = [("Analytics Suite", 12_000.0), ("Support Plan", 2_500.0)]


@dataclass
class Seeded:
    customers: dict[str, str]  # node_id -> name
    products: list[str]
    purchases: list[dict[str, Any]]  # the relationships' properties: amount, date
    current_month: str  # YYYY-MM
    revenue: float  # the current month's purchases, summed
    technology: set[str]  # names of the technology customers (what the guide's query wants)


def today() -> date:
    return datetime.now(UTC).date()


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    for item in body.get("results", []):
        assert item.get("status") != "error", body
    return body


def seed_guide_data(http: httpx.Client) -> Seeded:
    """Write the example's data for the client `http`'s token belongs to (a fresh client:
    its dashboard must not have been computed before, or the cached one may be shown)."""
    tag = uuid.uuid4().hex[:6]
    customers = {f"sdk-cust-{tag}-{i}": c[0] for i, c in enumerate(CUSTOMERS)}
    products = [f"sdk-prod-{tag}-{i}" for i in range(len(PRODUCTS))]

    entities = [
        {
            "node_id": node_id,
            "type": "customer",
            "properties": {
                "name": name,
                "industry": industry,
                "value_score": score,
                "description": (
                    f"{'High' if score > 80 else 'Low'}-value customer in the "
                    f"{industry.lower()} sector"
                ),
            },
        }
        for node_id, (name, industry, score) in zip(customers, CUSTOMERS, strict=True)
    ] + [
        {"node_id": pid, "type": "product", "properties": {"name": name, "price": price}}
        for pid, (name, price) in zip(products, PRODUCTS, strict=True)
    ]
    _ok(http.post("/knowledge-graph/entities", json={"entities": entities}))

    now = today()
    days = sorted({now, now.replace(day=1), now.replace(day=max(1, now.day // 2))})
    purchases: list[dict[str, Any]] = []
    relationships = []
    for i, node_id in enumerate(customers):
        for j, pid in enumerate(products):
            when = days[(i + j) % len(days)]
            props: dict[str, Any] = {
                "amount": round(PRODUCTS[j][1] * (1 + i / 10), 2),
                "date": when.isoformat(),
            }
            purchases.append(props)
            relationships.append(
                {"type": "PURCHASED", "source": node_id, "target": pid, "properties": props}
            )
    _ok(http.post("/knowledge-graph/relationships", json={"relationships": relationships}))
    return Seeded(
        customers,
        products,
        purchases,
        f"{now:%Y-%m}",
        round(sum(p["amount"] for p in purchases), 2),
        {name for name, industry, _ in CUSTOMERS if industry == "Technology"},
    )


def embedded(http: httpx.Client, node_id: str) -> bool:
    r = http.get(f"/knowledge-graph/entities/{node_id}")
    assert r.status_code == 200, r.text
    status = r.json().get("embedding_status") or {}
    return bool(status.get("status") == "embedded")


def guide_search(http: httpx.Client, limit: int = 10) -> list[dict[str, Any]]:
    """The example's semantic search, its hits."""
    r = http.post("/knowledge-graph/semantic-search", json={"query": GUIDE_QUERY, "limit": limit})
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["results"]
    return hits


def wait_searchable(http: httpx.Client, seeded: Seeded, timeout: float = 90) -> None:
    """Until every seeded entity is embedded and the guide's query finds every technology
    customer (an embedding worker must be running)."""
    pending = [*seeded.customers, *seeded.products]
    wait_until(
        lambda: all(embedded(http, node_id) for node_id in pending),
        "the seeded entities to be embedded (is a worker on aia.embeddings running?)",
        timeout=timeout,
        interval=0.5,
    )
    found = {hit["entity_data"].get("name") for hit in guide_search(http)}
    missing = seeded.technology - found
    assert not missing, f"the guide's query did not find {missing}: {found}"
