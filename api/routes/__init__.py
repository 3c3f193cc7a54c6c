"""The route table: every endpoint the API serves, each declaring its contract (api/contract.py)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from api.routes import (
    auth,
    bi_cycles,
    business_intelligence,
    datasets,
    docs,
    graph_query,
    graph_stream,
    graph_writes,
    health,
    metrics,
    monitoring,
    quotas,
    semantic_search,
    streams,
    task_types,
    tasks,
    webhooks,
)

ROUTES: list[BaseRoute] = [
    *health.routes,
    *metrics.routes,
    *monitoring.routes,
    *auth.routes,
    *quotas.routes,
    *streams.routes,
    *graph_stream.routes,
    *tasks.routes,
    *task_types.routes,
    *datasets.routes,
    *webhooks.routes,
    *graph_writes.routes,
    *graph_query.routes,
    *semantic_search.routes,
    *business_intelligence.routes,
    *bi_cycles.routes,
    *docs.routes,
]
