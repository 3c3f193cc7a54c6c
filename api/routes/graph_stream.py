"""`GET /knowledge-graph/stream`: the caller's knowledge-graph changes as server-sent events.

The same stream as `GET /tasks/stream` (api/routes/streams.py: the stream limit per client,
`Last-Event-ID`, `?from=`, heartbeats), over the other half of the client's event log: its
graph changes, never a task event. Filters: `entity_types` and `change_types`, comma-separated
or repeated (aia_engine/graph/filters.py says how a change passes). A resumed stream applies
the filters it is given again; the events it skips are simply not sent.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aia_engine.events.body import is_graph_event
from aia_engine.events.replay import graph_events_after
from aia_engine.graph.filters import FILTER_CHANGE_TYPES, ChangeFilter, parse_filter
from api.auth import require
from api.contract import operation, query
from api.deps import resources
from api.routes.streams import EVENT_STREAM, LAST_EVENT_ID, open_stream, start_param
from api.streams import Selection

ChangeTypeName = Literal[
    "created", "updated", "deleted", "relationship_added", "relationship_removed", "imported"
]
assert get_args(ChangeTypeName) == FILTER_CHANGE_TYPES  # the documented values are the valid ones

DESCRIPTION = (
    "Server-sent events (`text/event-stream`) of the caller's knowledge-graph changes, never a "
    "task event. Each event: `id:` its stream position, `event:` its type "
    "(`knowledge_graph.created`, `.updated`, `.deleted`, `.relationship_added`, "
    "`.relationship_removed`, `.imported`), `data:` the same JSON as a webhook body: event_id, "
    "event_type, timestamp, sequence (the graph version) and data {change_type, entity_id, "
    "entity_type, timestamp, graph_version, source, relationship (relationship changes), "
    "task_id (an agent's write); an `imported` summary, one per import chunk, has entity_types "
    "and changes (counts by change type) instead of one entity}. Filters: a change passes when "
    "its entity type (for a relationship change, its source node's type) and its change type "
    "are listed; a summary when `imported` or a change type it counts is listed and one of its "
    "entity types is. Reconnect with `Last-Event-ID` to receive every later change once, in "
    "order. Comment lines are heartbeats."
)


def graph_selection(changes: ChangeFilter) -> Selection:
    return Selection(lambda body: is_graph_event(body) and changes.accepts(body["data"]))


@operation(
    "Stream knowledge-graph changes",
    tag="streams",
    scope="read",
    params=[
        LAST_EVENT_ID,
        start_param("now"),
        query(
            "entity_types",
            list[str],
            "Only changes of these entity types (comma-separated, or the parameter repeated).",
        ),
        query(
            "change_types",
            list[ChangeTypeName],
            "Only these kinds of change (comma-separated, or the parameter repeated).",
        ),
    ],
    responses={200: EVENT_STREAM},
    errors=("E012", "E050"),
    description=DESCRIPTION,
)
async def graph_stream(request: Request) -> StreamingResponse:
    principal = await require(request, "read")
    client_id = principal.client_id
    params = request.query_params
    changes = parse_filter(params.getlist("entity_types"), params.getlist("change_types"))
    sessions = resources(request).sessions

    def replay_after(after: int) -> list[tuple[int, dict[str, Any]]]:
        return graph_events_after(sessions, client_id=client_id, after=after)

    return await open_stream(
        request,
        client_id,
        selection=graph_selection(changes),
        replay_after=replay_after,
        default_start="now",
    )


routes = [Route("/knowledge-graph/stream", graph_stream, methods=["GET"])]
