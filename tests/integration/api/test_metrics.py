"""`GET /metrics` (the guide's JSON) and the Prometheus exposition, across processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from aia_engine.embedded import free_port
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, token_for, wait_task
from tests.integration.api.test_rate_limits import _api_process
from tests.integration.conftest import Services, WorkerFactory, _stop

TASK = {
    "task_type": "custom",
    "description": "metrics",
    "workflow": {"a": {"agent": "noop", "dependencies": []}},
}


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_guide_json_fields_and_they_move(
    live_api: LiveApi, make_client: Callable[..., Credentials], worker: Any
) -> None:
    token = token_for(live_api, make_client())
    with live_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        before = http.get("/metrics")
        assert before.status_code == 200, before.text
        first = before.json()
        assert set(first) == {"system_metrics", "api_metrics", "business_metrics"}
        assert set(first["system_metrics"]) == {
            "cpu_usage",
            "memory_usage",
            "disk_usage",
            "active_connections",
        }
        assert {
            "requests_per_second",
            "average_response_time",
            "error_rate",
            "success_rate",
        } <= set(first["api_metrics"])
        assert set(first["business_metrics"]) == {
            "active_tasks", "completed_tasks", "knowledge_atoms", "embeddings",
            "agent_performance_score",
        }  # fmt: skip
        ids = [http.post("/tasks/orchestrate", json=TASK).json()["task_id"] for _ in range(3)]
        for task_id in ids:
            wait_task(http, task_id)
        # Each API process adds its request counts to Redis once a second.
        after = wait_until(
            lambda: (
                (m := http.get("/metrics").json())["api_metrics"]["requests_per_second"] > 0 and m
            ),
            "this test's requests counted in Redis",
            timeout=10,
        )
        assert (
            after["business_metrics"]["completed_tasks"]
            >= first["business_metrics"]["completed_tasks"] + 3
        )
        assert after["api_metrics"]["requests_per_second"] > 0
        assert 0 <= after["api_metrics"]["error_rate"] <= 1
        assert 0 < after["business_metrics"]["agent_performance_score"] <= 100
        assert after["system_metrics"]["active_connections"] > 0
    admin = token_for(live_api, make_client(scopes="read admin"))
    with live_api.client(headers={"Authorization": f"Bearer {admin}"}) as http:
        plain = http.get("/metrics", headers={"Accept": "text/plain"})
        assert plain.headers["content-type"].startswith("text/plain")
        assert ("aia_tasks", (("status", "completed"),)) in samples(plain.text)
    assert httpx.get(live_api.url + "/metrics").status_code == 401


def test_business_metrics_are_the_callers_own_and_global_figures_need_admin(
    live_api: LiveApi, make_client: Callable[..., Credentials], worker: Any
) -> None:
    busy = token_for(live_api, make_client())
    with live_api.client(headers={"Authorization": f"Bearer {busy}"}) as http:
        ids = [http.post("/tasks/orchestrate", json=TASK).json()["task_id"] for _ in range(3)]
        for task_id in ids:
            wait_task(http, task_id)
        mine = http.get("/metrics").json()["business_metrics"]
        assert mine["active_tasks"] == 0 and mine["completed_tasks"] == 3
        assert mine["agent_performance_score"] == 100.0
    idle = token_for(live_api, make_client(scopes="read"))
    with live_api.client(headers={"Authorization": f"Bearer {idle}"}) as http:
        theirs = http.get("/metrics").json()["business_metrics"]
        assert theirs["active_tasks"] == 0 and theirs["completed_tasks"] == 0
        # The system-wide exposition (tasks of every client) needs the admin scope.
        for refused in (
            http.get("/metrics/prometheus"),
            http.get("/metrics", headers={"Accept": "text/plain"}),
        ):
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "E403"
    admin = token_for(live_api, make_client(scopes="read admin"))
    with live_api.client(headers={"Authorization": f"Bearer {admin}"}) as http:
        scraped = samples(http.get("/metrics/prometheus").text)
        assert scraped[("aia_tasks", (("status", "completed"),))] >= 3


def test_prometheus_counters_agree_with_the_database_across_processes(
    services: Services, make_client: Callable[..., Credentials], start_worker: WorkerFactory
) -> None:
    ports = [free_port(), free_port()]
    apis = [_api_process(services, p, services.tmp / f"metrics-api-{p}.log") for p in ports]
    workers = [start_worker("metrics-a"), start_worker("metrics-b")]
    try:
        creds = make_client(tier="enterprise", scopes="read write admin")
        token = httpx.post(
            f"http://127.0.0.1:{ports[0]}/auth/token",
            data=creds.form(grant_type="client_credentials"),
        ).json()["access_token"]
        made: list[int] = []
        clients = [
            httpx.Client(
                base_url=f"http://127.0.0.1:{p}",
                headers={"Authorization": f"Bearer {token}"},
                event_hooks={"response": [lambda r: made.append(r.status_code)]},
            )
            for p in ports
        ]
        time.sleep(1.5)  # earlier requests reach Redis
        before = samples(clients[0].get("/metrics/prometheus").text)
        ids = [
            clients[i % 2].post("/tasks/orchestrate", json=TASK).json()["task_id"]
            for i in range(20)
        ]
        for i, task_id in enumerate(ids):
            assert wait_task(clients[i % 2], task_id)["status"] == "completed"
        time.sleep(1.5)
        after_text = clients[1].get("/metrics/prometheus").text
        after = samples(after_text)
        with services.sessions.begin() as session:
            stage_rows = dict(
                session.execute(
                    text(
                        "SELECT status, count(*) FROM stage_runs WHERE agent = 'noop' GROUP BY status"
                    )
                ).all()
            )
            task_rows = dict(
                session.execute(text("SELECT status, count(*) FROM tasks GROUP BY status")).all()
            )
        assert (
            after[("aia_stage_runs_total", (("agent", "noop"), ("outcome", "completed")))]
            == stage_rows["completed"]
        )
        assert after[("aia_tasks", (("status", "completed"),))] == task_rows["completed"]
        # Every request this test made between the scrapes (and the first scrape itself),
        # through either process, is counted once, with its status class.
        between = made[1:-1]  # the two scrapes themselves excluded ...
        count = ("aia_api_request_duration_seconds_count", ())
        assert after[count] - before[count] == len(between) + 1  # ... but the first one counted
        key = ("aia_api_requests_total", (("status_class", "2xx"),))
        assert after[key] - before.get(key, 0.0) == sum(1 for c in between if c < 300) + 1
        assert ("aia_queue_depth", (("queue", "aia.default"),)) in after
        for c in clients:
            c.close()
    finally:
        for p in apis + workers:
            _stop(p)


def test_knowledge_atoms_are_the_callers_graph_and_the_exposition_sums_every_graph(
    live_api: LiveApi, services: Services, make_client: Callable[..., Credentials]
) -> None:
    from aia_engine.graph.model import NodeIn, RelationshipIn
    from aia_engine.graph.writing import write_items

    owner, other = make_client(), make_client()
    admin = token_for(live_api, make_client(scopes="read admin"))

    def atoms(creds: Credentials) -> Any:
        with live_api.client(
            headers={"Authorization": f"Bearer {token_for(live_api, creds)}"}
        ) as h:
            return h.get("/metrics").json()["business_metrics"]["knowledge_atoms"]

    def scraped() -> dict[str, float]:
        with live_api.client(headers={"Authorization": f"Bearer {admin}"}) as h:
            found = samples(h.get("/metrics/prometheus").text)
        return {
            kind: found[("aia_knowledge_graph_atoms", (("kind", kind),))]
            for kind in ("nodes", "relationships")
        }

    # No graph yet: 0, a real figure (the tables answer), not null.
    assert atoms(owner) == 0
    before = scraped()
    nodes = [(NodeIn(f"n{i}", "customer"), False) for i in range(5)]
    rels = [RelationshipIn(f"r{i}", "KNOWS", f"n{i}", f"n{i + 1}") for i in range(4)]
    write_items(services.sessions, owner.client_id, nodes, rels, source="api")
    assert atoms(owner) == 5 + 4
    assert atoms(other) == 0  # tenancy: another client's graph is not counted
    with services.sessions.begin() as session:
        totals = session.execute(text("SELECT sum(nodes), sum(relationships) FROM kg_graphs")).one()
    after = scraped()
    assert after == {"nodes": float(totals[0]), "relationships": float(totals[1])}
    assert after["nodes"] - before["nodes"] >= 5 and after["relationships"] >= 4
