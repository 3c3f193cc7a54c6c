"""POST /knowledge-graph/query: a client's read-only Cypher query over its own graph."""

from __future__ import annotations

import secrets
from functools import partial

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.graph.cache import process_cache
from aia_engine.graph.query import run_query
from api import schemas
from api.auth import require
from api.body import json_body, parse_model
from api.contract import operation
from api.deps import resources
from api.replies import reply

QUERY_ERRORS = ("E030", "E031", "E032", "E033", "E034")


@operation(
    "Query knowledge graph",
    tag="knowledge graph",
    scope="read",
    body=schemas.GraphQueryRequest,
    responses={200: schemas.GraphQueryResult},
    errors=QUERY_ERRORS,
    description=(
        "Runs one read-only Cypher query on the caller's own graph (another client's nodes are "
        "simply absent). `$name` parameters are bound as values. Unsupported constructs "
        "(writes, CALL, WITH, OPTIONAL MATCH, UNION, unbounded [*], ...) answer 422 E031 naming "
        "the construct; syntax errors 422 E030 with line and column; a query past its time "
        "limit is stopped and answers 422 E033. At most AIA_KG_QUERY_MAX_ROWS rows are "
        "answered (metadata.truncated says when more matched)."
    ),
)
async def query(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    body = parse_model(schemas.GraphQueryRequest, await json_body(request))
    # First bring the cached graph up to date, outside the query slots: a catch-up may wait
    # for this client's running queries, and must not hold a slot other clients need meanwhile.
    cache = process_cache(res.settings.kg_cache_max_items)
    access = await anyio.to_thread.run_sync(cache.current, res.sessions, principal.client_id)
    run = partial(
        run_query,
        res.sessions,
        principal.client_id,
        body.query,
        body.parameters,
        settings=res.settings,
        cache=cache,
        access=access,
    )
    # CPU-bound: off the event loop, and no more at once than AIA_KG_QUERY_CONCURRENCY, so
    # the API's other requests keep their threads and the loop stays responsive.
    result = await anyio.to_thread.run_sync(run, limiter=res.graph_queries)
    answer: dict[str, object] = {
        "query_id": f"kg_query_{secrets.token_hex(12)}",
        "results": result.results,
    }
    if body.include_metadata:
        answer["metadata"] = result.metadata
    return reply(request, answer)


routes = [Route("/knowledge-graph/query", query, methods=["POST"])]
