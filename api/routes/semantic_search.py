"""POST /knowledge-graph/semantic-search: the entities of the caller's graph nearest in meaning to
a text (aia_engine.search.query)."""

from __future__ import annotations

from functools import partial

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.search.query import parse_search, semantic_search
from api import schemas
from api.auth import require
from api.body import json_body
from api.contract import operation
from api.deps import resources
from api.replies import reply

SEARCH_ERRORS = ("E062",)


@operation(
    "Semantic search of the knowledge graph",
    tag="knowledge graph",
    scope="read",
    body=schemas.SemanticSearchRequest,
    responses={200: schemas.SemanticSearchResult},
    errors=SEARCH_ERRORS,
    description=(
        "Embeds the query (all-MiniLM-L6-v2, 384 dimensions, in this process, offline) and "
        "answers the caller's own entities whose embedded text is nearest to it, most similar "
        "first: similarity_score is the cosine similarity (results below `threshold` are left "
        "out), entity_data the entity's properties, match_explanation the entity's fields "
        "closest to the query and the query terms found in its text. Entities are searchable "
        "once the embedding workers have indexed them (GET /knowledge-graph/entities/{id} "
        "shows embedding_status). A bad field answers 422 E062 naming it."
    ),
)
async def semantic_search_route(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    spec = parse_search(await json_body(request), "", res.settings)
    run = partial(semantic_search, res.sessions, principal.client_id, spec, res.settings)
    # The query's embedding and the explanations are CPU-bound: off the event loop, and no
    # more at once than AIA_SEARCH_CONCURRENCY.
    answer = await anyio.to_thread.run_sync(run, limiter=res.semantic_searches)
    return reply(request, answer)


routes = [Route("/knowledge-graph/semantic-search", semantic_search_route, methods=["POST"])]
