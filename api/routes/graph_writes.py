"""Knowledge-graph writes and reads by id: upsert and delete entities and relationships in bulk
(partial acceptance, as batch-submit: one bad item never stops the others), read one entity,
delete one entity, and the graph's summary. Each caller sees and writes only its own graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aia_engine.errors import InvalidRequest
from aia_engine.graph import store
from aia_engine.graph.idempotency import Idempotency, request_hash
from api import schemas
from api.auth import require
from api.body import json_body
from api.contract import Reply, operation
from api.deps import in_thread, resources
from api.replies import reply
from api.routes.tasks import IDEMPOTENCY, idempotency_key

TAG = "knowledge graph"
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when a repeated Idempotency-Key answered the first request's "
        "result (nothing was written again)",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
PARTIAL = (
    "200 whatever the mix, as batch-submit: every valid item is written in one transaction and "
    "each item's outcome is in `results` (by `index`): `created`, `updated`, `unchanged`, "
    "`deleted`, `not_found`, or `error` with the error in the guide's shape (E035 invalid "
    "item, E036 a relationship end that is not a node of your graph, E037 a relationship id "
    "taken with another type or ends, E038 an id repeated in the request: the first is "
    "written). `graph_version` is the graph's version after the write; a write that changes "
    "nothing leaves it as it was. A repeated Idempotency-Key with the same body answers the "
    "first result with `Idempotent-Replayed: true` and writes nothing; with another body, 409."
)
WRITTEN = {200: Reply(schemas.GraphWriteResult, "Every item's outcome", headers=REPLAYED)}


def _items(
    data: Any, field: str, options: dict[str, type], limit: int
) -> tuple[list[Any], dict[str, Any]]:
    """The body's list of items and its options, checked as a whole (items one by one later)."""
    if not isinstance(data, dict):
        raise InvalidRequest(
            f'body must be {{"{field}": [ ... ]}}',
            field="body",
            issue="wrong type",
            provided_value=type(data).__name__,
        )
    unknown = sorted(set(data) - {field, *options})
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0]!r}; the body has {field}"
            + "".join(f", {o}" for o in options),
            field=unknown[0],
            issue="unknown field",
            provided_value=unknown[0][:200],
        )
    items = data.get(field)
    if not isinstance(items, list) or not items:
        raise InvalidRequest(
            f"{field} must be a list of at least one item",
            field=field,
            issue="missing or empty",
            provided_value=None if items is None else type(items).__name__,
        )
    if len(items) > limit:
        raise InvalidRequest(
            f"a request holds at most {limit} {field}; split it (or use `aia-engine kg import`)",
            field=field,
            issue="too many items",
            provided_value=len(items),
        )
    chosen = {}
    for name, kind in options.items():
        if name in data:
            if not isinstance(data[name], kind):
                raise InvalidRequest(
                    f"{name} must be a {kind.__name__}",
                    field=name,
                    issue="wrong type",
                    provided_value=type(data[name]).__name__,
                )
            chosen[name] = data[name]
    return items, chosen


async def _bulk(
    request: Request,
    operation_name: str,
    field: str,
    write: Callable[..., store.WriteResult],
    options: dict[str, type] | None = None,
) -> Response:
    principal = await require(request, "write")
    res = resources(request)
    key = idempotency_key(request)
    data = await json_body(request)
    items, chosen = _items(data, field, options or {}, res.settings.kg_write_max_items)
    idempotency = None
    if key is not None:
        idempotency = Idempotency(
            key,
            operation_name,
            request_hash(operation_name, data),
            keep_hours=res.settings.kg_idempotency_hours,
        )
    result = await in_thread(
        write, res.sessions, principal.client_id, items, **chosen, idempotency=idempotency
    )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return reply(request, result.to_dict(), headers=headers)


@operation(
    "Upsert entities",
    tag=TAG,
    scope="write",
    body=schemas.GraphEntitiesWrite,
    params=[IDEMPOTENCY],
    responses=WRITTEN,
    errors=("E009",),
    description=PARTIAL,
)
async def upsert_entities(request: Request) -> Response:
    return await _bulk(request, "upsert_nodes", "entities", store.upsert_nodes, {"merge": bool})


@operation(
    "Upsert relationships",
    tag=TAG,
    scope="write",
    body=schemas.GraphRelationshipsWrite,
    params=[IDEMPOTENCY],
    responses=WRITTEN,
    errors=("E009",),
    description=PARTIAL,
)
async def upsert_relationships(request: Request) -> Response:
    return await _bulk(
        request,
        "upsert_relationships",
        "relationships",
        store.upsert_relationships,
        {"merge": bool},
    )


@operation(
    "Delete entities",
    tag=TAG,
    scope="write",
    body=schemas.GraphNodeDeletes,
    params=[IDEMPOTENCY],
    responses=WRITTEN,
    errors=("E009",),
    description="Deletes each node and every relationship from or to it (one "
    "`relationship_removed` event for each, then `deleted` with `relationships_removed`; past "
    "1000 relationships in one request, only the counts). " + PARTIAL,
)
async def delete_entities(request: Request) -> Response:
    return await _bulk(request, "delete_nodes", "node_ids", store.delete_nodes)


@operation(
    "Delete relationships",
    tag=TAG,
    scope="write",
    body=schemas.GraphRelationshipDeletes,
    params=[IDEMPOTENCY],
    responses=WRITTEN,
    errors=("E009",),
    description=PARTIAL,
)
async def delete_relationships(request: Request) -> Response:
    return await _bulk(
        request, "delete_relationships", "relationship_ids", store.delete_relationships
    )


@operation(
    "Get entity",
    tag=TAG,
    method="GET",
    scope="read",
    responses={200: schemas.GraphNodeView},
    description="The node in the guide's shape (`connections` is its degree) and `created_at`. "
    "404 when your graph has no such node.",
)
@operation(
    "Delete entity",
    tag=TAG,
    method="DELETE",
    scope="write",
    responses={200: schemas.GraphNodeDeleted},
    description="Deletes the node and every relationship from or to it. 404 when your graph "
    "has no such node.",
)
async def entity(request: Request) -> Response:
    node_id = request.path_params["node_id"]
    if request.method == "DELETE":
        principal = await require(request, "write")
        res = resources(request)
        done = await in_thread(store.delete_node, res.sessions, principal.client_id, node_id)
        return reply(request, done)
    principal = await require(request, "read")
    res = resources(request)
    node = await in_thread(store.get_node, res.sessions, principal.client_id, node_id)
    return reply(request, node)


@operation(
    "Graph summary",
    tag=TAG,
    scope="read",
    responses={200: schemas.GraphSummaryView},
    description="Your graph's version (one more with each write that changed it), its node "
    "and relationship counts, the counts by type, and when it last changed.",
)
async def summary(request: Request) -> Response:
    principal = await require(request, "read")
    res = resources(request)
    found = await in_thread(store.graph_summary, res.sessions, principal.client_id)
    return reply(request, found.to_dict())


routes = [
    Route("/knowledge-graph", summary, methods=["GET"]),
    Route("/knowledge-graph/entities", upsert_entities, methods=["POST"]),
    Route("/knowledge-graph/entities/delete", delete_entities, methods=["POST"]),
    Route("/knowledge-graph/entities/{node_id}", entity, methods=["GET", "DELETE"]),
    Route("/knowledge-graph/relationships", upsert_relationships, methods=["POST"]),
    Route("/knowledge-graph/relationships/delete", delete_relationships, methods=["POST"]),
]
