"""The seeding helper (tests/integration/sdk/seed.py) over plain httpx against the live API and
an embedding worker: after it, the client's dashboard has this month's revenue (not null), the
guide's semantic search finds the technology customers by name. (The example's
`data_source: "customer_interactions"` is the shipped sample of that name.)"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx
import pytest

from tests.integration.api.conftest import Credentials
from tests.integration.sdk.seed import CUSTOMERS, guide_search, seed_guide_data, wait_searchable

pytestmark = pytest.mark.timeout(120)  # the embedding worker loads its model


def test_after_seeding_the_dashboard_month_and_the_guides_search_have_real_values(
    authed: Callable[..., httpx.Client],
    make_client: Callable[..., Credentials],
    embedder: subprocess.Popen[bytes],
) -> None:
    creds = make_client()
    with authed(creds=creds) as http:
        seeded = seed_guide_data(http)

        dashboard = http.get("/business-intelligence/dashboard")
        assert dashboard.status_code == 200, dashboard.text
        metrics = dashboard.json()["metrics"]
        assert metrics["revenue"]["current_month"] == pytest.approx(seeded.revenue)
        assert metrics["revenue"]["current_month"] > 0
        assert metrics["customers"]["total_active"] == len(CUSTOMERS)

        wait_searchable(http, seeded)
        hits = guide_search(http)
        top = [hit["entity_data"]["name"] for hit in hits[: len(seeded.technology)]]
        assert set(top) == seeded.technology, top  # the guide's query ranks them first
        assert all(isinstance(hit["similarity_score"], float) for hit in hits)
