"""The bodies of the API on the wire: response shapes and the bodies no use case reads as a
model (forms, the batch). Use cases return plain dicts of these shapes; the routes declare them
(api/contract.py), /openapi.json is generated from them, and every answer is written through
them (api/replies.py), so a field's order on the wire is its order here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from aia_engine.tasks.models import TaskRequest


class ErrorBody(BaseModel):
    type: str
    message: str
    code: str = Field(pattern=r"^E\d{3}$")
    details: dict[str, Any]
    timestamp: str
    request_id: str
    documentation_url: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    detail: str = Field(description="error.message again, for FastAPI-style clients")


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # An absent form field is not a null one: forms have no null.
    for prop in schema.get("properties", {}).values():
        if prop.get("default", "") is None:
            del prop["default"]


class TokenForm(BaseModel):
    """POST /auth/token's form (client credentials may come as HTTP Basic instead)."""

    model_config = ConfigDict(json_schema_extra=_no_null_defaults)

    grant_type: Literal["client_credentials", "refresh_token"]
    client_id: str | SkipJsonSchema[None] = None
    client_secret: str | SkipJsonSchema[None] = None
    scope: str | SkipJsonSchema[None] = None
    refresh_token: str | SkipJsonSchema[None] = None


class RevokeForm(BaseModel):
    """POST /auth/revoke's form (RFC 7009)."""

    model_config = ConfigDict(json_schema_extra=_no_null_defaults)

    token: str
    token_type_hint: str | SkipJsonSchema[None] = None
    client_id: str | SkipJsonSchema[None] = None
    client_secret: str | SkipJsonSchema[None] = None


class Revoked(BaseModel):
    """POST /auth/revoke answers `{}`, whether the token was known or not (RFC 7009)."""

    model_config = ConfigDict(extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    refresh_token: str


class TaskAccepted(BaseModel):
    task_id: str
    status: Literal["accepted"]
    estimated_completion: str | None
    assigned_agents: list[str]
    tracking_url: str


class TaskTypeView(BaseModel):
    name: str
    description: str
    builtin: bool = Field(description="a template shipped with the engine (cannot be changed)")
    assigned_agents: list[str]
    workflow: dict[str, Any] | list[Any]
    created_at: str | None = Field(description="null for built-in templates")


class TaskTypeList(BaseModel):
    task_types: list[TaskTypeView]


class DatasetColumn(BaseModel):
    name: str
    type: Literal["integer", "number", "string", "boolean", "object", "array", "null", "mixed"]
    nulls: int = Field(description="records where the column is null or absent")


class DatasetView(BaseModel):
    id: str = Field(description="`ds_` + 24 hex digits (`sample:NAME` for a shipped sample)")
    name: str
    client_id: str | None = Field(description="the owner; null for shared datasets and samples")
    rows: int
    size_bytes: int = Field(description="bytes of the file as uploaded")
    format: str = Field(description="csv, jsonl or json (records: added as a list)")
    columns: list[DatasetColumn] = Field(description="in order of first appearance")
    shared: bool = Field(description="an operator's dataset or a sample: every client sees it")
    read_only: bool = Field(description="the caller may read it but not replace or delete it")
    description: str | None = Field(default=None, description="samples only")
    created_at: str | None
    updated_at: str | None


class DatasetList(BaseModel):
    datasets: list[DatasetView]


class StageView(BaseModel):
    name: str
    agent: str
    status: Literal["pending", "running", "completed", "failed", "skipped", "cancelled"]
    dependencies: list[str]
    attempt: int
    max_attempts: int
    progress: float
    partial_results: dict[str, Any] | None
    started_at: str | None
    finished_at: str | None
    error: dict[str, Any] | None
    output: dict[str, Any] | None


TaskStatusName = Literal["accepted", "queued", "in_progress", "completed", "failed", "cancelled"]


class TaskView(BaseModel):
    task_id: str
    task_type: str
    description: str
    priority: Literal["high", "medium", "low"]
    status: TaskStatusName
    progress: float
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    estimated_completion: str | None
    assigned_agents: list[str]
    partial_results: dict[str, Any]
    stages: list[StageView]
    results: dict[str, Any] | None = Field(default=None, description="Present once completed.")
    error: dict[str, Any] | None = Field(default=None, description="Present once failed.")


class TaskSummary(BaseModel):
    task_id: str
    task_type: str
    status: TaskStatusName
    progress: float
    priority: Literal["high", "medium", "low"]
    created_at: str | None
    updated_at: str | None
    assigned_agents: list[str]
    tracking_url: str


class TaskList(BaseModel):
    tasks: list[TaskSummary]
    count: int
    next_cursor: str | None


class BatchTask(TaskRequest):
    idempotency_key: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="Used instead of `Idempotency-Key:index`.",
    )


class BatchRequest(BaseModel):
    tasks: list[BatchTask] = Field(
        min_length=1,
        description="Each item may carry its own `idempotency_key` (1-200 visible ASCII "
        "characters), used instead of `Idempotency-Key:index`.",
    )


class BatchItem(BaseModel):
    # In the order the use case writes them: an accepted item is `index`, the TaskAccepted
    # fields, `created`; a rejected one `index`, `status`, `error` (unset fields are left out).
    index: int
    task_id: str | None = None
    status: str
    estimated_completion: str | None = None
    assigned_agents: list[str] | None = None
    tracking_url: str | None = None
    created: bool | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItem]


class DryRunPlan(BaseModel):
    valid: bool
    dry_run: bool
    task_type: str
    assigned_agents: list[str]
    stages: list[dict[str, Any]]
    execution_order: list[str]
    series_parallel: bool
    compiled_shape: Any
    estimated_duration_s: float
    critical_path_s: float


class CancelResult(BaseModel):
    task_id: str
    status: Literal["cancelled"]
    cancelled_stages: list[str]


class RetryResult(BaseModel):
    task_id: str
    status: Literal["accepted"]
    retried_stages: list[str]
    reused_stages: list[str]
    tracking_url: str


class WebhookPublic(BaseModel):
    webhook_id: str
    webhook_url: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    created_at: str | None
    updated_at: str | None
    previous_secret_valid_until: str | None
    secret: str | None = Field(
        default=None, description="Only when the API generated the secret, once."
    )


class WebhookList(BaseModel):
    webhooks: list[WebhookPublic]
    count: int


class DeliveryAttempt(BaseModel):
    attempt: int
    at: str | None
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_body: str | None = Field(description="The receiver's answer, truncated")
    next_attempt_at: str | None


class WebhookDeliveryView(BaseModel):
    delivery_id: str
    webhook_id: str
    event_id: str
    event_type: str
    task_id: str | None
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str | None
    delivered_at: str | None
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    webhook_id: str
    deliveries: list[WebhookDeliveryView]
    count: int
    next_cursor: str | None


class RequestQuota(BaseModel):
    limit_per_hour: int
    limit_per_minute: int
    burst: int
    remaining_this_hour: int | None
    burst_remaining: int | None
    window_reset: int | None = Field(description="Unix time the hourly window resets")


class ActiveTaskQuota(BaseModel):
    limit: int
    active: int | None = Field(description="None while the counter (Redis) is unreachable")
    remaining: int | None


class Quotas(BaseModel):
    client_id: str
    tier: str
    enforced: bool
    requests: RequestQuota
    active_tasks: ActiveTaskQuota


class SystemMetrics(BaseModel):
    cpu_usage: float | None = Field(
        description="Percent of all cores, since this API process's previous reading; "
        "null until one interval has been measured"
    )
    memory_usage: float
    disk_usage: float
    active_connections: int


class ApiMetrics(BaseModel):
    requests_per_second: float
    average_response_time: float | None = Field(
        description="Milliseconds, over the window; null when no request was answered"
    )
    error_rate: float | None = Field(
        description="4xx and 5xx answers over all answers, 0-1; null when no request was answered"
    )
    success_rate: float | None = Field(
        description="Percent of answers below 400; null when no request was answered"
    )
    window_seconds: int


class EmbeddingCounts(BaseModel):
    pending: int
    embedded: int
    failed: int


class BusinessMetrics(BaseModel):
    active_tasks: int
    completed_tasks: int
    knowledge_atoms: int = Field(
        description="Nodes plus relationships in the caller's knowledge graph (0 when it has none)"
    )
    embeddings: EmbeddingCounts = Field(
        description="The caller's entities by embedding status (semantic search)"
    )
    agent_performance_score: float | None = Field(
        description="Percent of stage runs ended in the last 24 hours that completed; "
        "null when none ended"
    )


class Metrics(BaseModel):
    system_metrics: SystemMetrics
    api_metrics: ApiMetrics
    business_metrics: BusinessMetrics


class ActivityRecorded(BaseModel):
    status: Literal["recorded"]
    activity_id: str
    user_id: str


class AnalyticsSummary(BaseModel):
    total_requests: int
    successful_requests: int
    failed_requests: int
    average_response_time: float | None
    data_transferred: str
    data_transferred_bytes: int
    most_used_endpoints: list[str]


class UsagePatterns(BaseModel):
    peak_hours: list[int]
    preferred_endpoints: dict[str, float]


class AnalyticsPerformance(BaseModel):
    p50_response_time: float | None
    p95_response_time: float | None
    p99_response_time: float | None
    error_rate: float | None = Field(
        description="Failed (status 400 or more) over requests with a status code, 0-1; "
        "null when none had one"
    )


class UserAnalytics(BaseModel):
    user_id: str
    analytics_period: Literal["1h", "24h", "7d", "30d"]
    summary: AnalyticsSummary
    usage_patterns: UsagePatterns
    performance_metrics: AnalyticsPerformance


class Alive(BaseModel):
    status: Literal["alive"]
    version: str


class Health(BaseModel):
    status: Literal["healthy", "degraded"]
    timestamp: str
    version: str
    services: dict[str, str]
    uptime: int
    request_count: int
    workers_alive: int
    failing_services: list[str] | None = None


# -- knowledge graph writes (aia_engine/graph/store.py) -------------------------------------

_GRAPH_ID = Field(min_length=1, max_length=200, description="1-200 characters, no control ones")
_GRAPH_TYPE = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="An identifier")


class GraphEntityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_id: str = _GRAPH_ID
    type: str = _GRAPH_TYPE
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description="A JSON object (at most 64 KB); node_id, type and names starting with __ "
        "are reserved.",
    )


class GraphEntitiesWrite(BaseModel):
    entities: list[GraphEntityIn] = Field(
        min_length=1, description="At most AIA_KG_WRITE_MAX_ITEMS (1000 by default)."
    )
    merge: bool = Field(
        default=False,
        description="false: a node's type and properties become the item's; true: the item's "
        "properties are merged into the stored ones key by key.",
    )


class GraphRelationshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relationship_id: str | SkipJsonSchema[None] = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Derived from source, type and target when left out.",
    )
    type: str = _GRAPH_TYPE
    source: str = _GRAPH_ID
    target: str = _GRAPH_ID
    properties: dict[str, Any] = Field(
        default_factory=dict,
        description="A JSON object (at most 64 KB); relationship_id, type, source, target and "
        "names starting with __ are reserved.",
    )


class GraphRelationshipsWrite(BaseModel):
    relationships: list[GraphRelationshipIn] = Field(
        min_length=1, description="At most AIA_KG_WRITE_MAX_ITEMS (1000 by default)."
    )
    merge: bool = Field(default=False, description="Merge properties key by key.")


class GraphNodeDeletes(BaseModel):
    node_ids: list[str] = Field(min_length=1)


class GraphRelationshipDeletes(BaseModel):
    relationship_ids: list[str] = Field(min_length=1)


GraphItemStatus = Literal["created", "updated", "unchanged", "deleted", "not_found", "error"]


class GraphItemResult(BaseModel):
    # In the order the use case writes them: index, the item's id (when it had one), status,
    # error (only with status `error`).
    index: int
    node_id: str | SkipJsonSchema[None] = None
    relationship_id: str | SkipJsonSchema[None] = None
    status: GraphItemStatus
    error: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="type, code, message, details (the guide's error shape)"
    )


class GraphWriteResult(BaseModel):
    graph_version: int = Field(description="The graph's version after this write.")
    accepted: int
    rejected: int
    results: list[GraphItemResult]


class GraphNodeDeleted(BaseModel):
    node_id: str
    status: Literal["deleted"]
    relationships_removed: int
    graph_version: int


class EmbeddingStatus(BaseModel):
    status: Literal["pending", "embedded", "failed"] = Field(
        description="`pending`: its current text waits for an embedding worker (the previous "
        "vector, if any, still answers searches); `embedded`: its vector is its current text's; "
        "`failed`: the encoder refused its text (retried when the entity is written again)"
    )
    model: str | None = Field(description="The encoder that made its vector (null before one)")
    updated_at: str


class GraphNodeView(BaseModel):
    node_id: str
    type: str
    properties: dict[str, Any]
    connections: int = Field(description="The node's degree (relationships from and to it).")
    last_updated: str
    created_at: str
    embedding_status: EmbeddingStatus | None = Field(
        description="Where the entity's vector for semantic search stands; null for a node "
        "written before indexing existed that has no row yet"
    )


class GraphSummaryView(BaseModel):
    version: int
    nodes: int
    relationships: int
    node_types: dict[str, int]
    relationship_types: dict[str, int]
    updated_at: str | None


class GraphQueryRequest(BaseModel):
    """POST /knowledge-graph/query: the guide's body, plus `parameters` bound to `$names`."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        description="One read-only Cypher query (see /errors/E031 for what is supported)",
        examples=["MATCH (n:Entity) WHERE n.type = 'customer' RETURN n LIMIT 10"],
    )
    format: Literal["json"] = Field(default="json", description="Only json")
    include_metadata: bool = True
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Values of the query's $names: strings, numbers, booleans, null, or lists "
        "of those after IN. Bound as values: they never change the query.",
    )


class GraphQueryMetadata(BaseModel):
    execution_time_ms: float = Field(description="Measured, from the request's parse to its answer")
    total_nodes_scanned: int = Field(description="Distinct graph nodes the matcher examined")
    cache_hit: bool = Field(
        description="False when this process loaded or caught up the graph first"
    )
    graph_version: int = Field(description="The graph version the query read")
    row_count: int
    truncated: bool = Field(description="True when more than AIA_KG_QUERY_MAX_ROWS rows matched")
    columns: list[str] = Field(description="The RETURN columns, as written in the query")


class GraphQueryResult(BaseModel):
    query_id: str = Field(pattern=r"^kg_query_[0-9a-f]{24}$")
    results: list[Any] = Field(
        description="One column: its values; several: one object per row by column name. A "
        "node is {node_id, type, properties, connections, last_updated}, a relationship "
        "{relationship_id, type, source, target, properties}."
    )
    metadata: GraphQueryMetadata | SkipJsonSchema[None] = None


class SemanticSearchRequest(BaseModel):
    """POST /knowledge-graph/semantic-search: the guide's body, plus optional filters. Read by
    aia_engine.search.query.parse_search (422 E062 naming the field), declared here."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=1000,
        description="Text to search for (not blank; at most AIA_SEARCH_QUERY_MAX_CHARS "
        "characters, 1000 by default)",
        examples=["high-value customers in technology sector"],
    )
    limit: int = Field(default=20, ge=1, le=100, description="Results answered at most")
    threshold: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Least cosine similarity of a result"
    )
    include_explanations: bool = Field(
        default=True, description="Whether each result carries its match_explanation"
    )
    entity_types: list[str] | SkipJsonSchema[None] = Field(
        default=None,
        max_length=50,
        description="Only entities of these types (none or empty: every type)",
    )
    filters: dict[str, str | float | bool] | SkipJsonSchema[None] = Field(
        default=None,
        description='Only entities whose properties equal these values, e.g. {"region": "EMEA"}',
    )


class SemanticSearchHit(BaseModel):
    entity_id: str
    similarity_score: float = Field(
        description="The cosine similarity of the entity's "
        "embedding and the query's, rounded to 4 places"
    )
    match_explanation: str | None = Field(
        description="The entity's fields closest to the query (per-field cosine) and the "
        "query terms found in its text; null without include_explanations"
    )
    entity_data: dict[str, Any] = Field(description="The entity's properties")
    entity_type: str


class SemanticSearchResult(BaseModel):
    search_id: str = Field(pattern=r"^kgs_[0-9a-f]{24}$")
    results: list[SemanticSearchHit] = Field(description="Most similar first")
    query_vector_dimensions: int = Field(description="384 (all-MiniLM-L6-v2)")
    search_time_ms: float = Field(description="Measured: embedding, search and explanations")


# -- business intelligence (aia_engine/bi/dashboard.py; docs/business-intelligence.md) -------


class DashboardRevenue(BaseModel):
    current_month: float | None
    previous_month: float | None
    growth_rate: float | None
    forecast_next_month: float | None


class DashboardCustomers(BaseModel):
    total_active: int | None
    new_this_month: int | None
    churn_rate: float | None
    satisfaction_score: float | None = Field(description="0-10, from VADER's compound score")


class DashboardOperations(BaseModel):
    task_completion_rate: float | None
    average_response_time: float | None = Field(description="seconds")
    system_uptime: float | None
    agent_efficiency: float | None


class DashboardMetrics(BaseModel):
    revenue: DashboardRevenue
    customers: DashboardCustomers
    operations: DashboardOperations


class DashboardTrends(BaseModel):
    revenue_trend: Literal["increasing", "decreasing", "stable"] | None
    customer_growth: Literal["growing", "stable", "shrinking"] | None
    operational_efficiency: Literal["improving", "stable", "declining"] | None


class DashboardAlert(BaseModel):
    type: Literal["info", "warning", "critical"]
    message: str
    severity: Literal["low", "medium", "high"]
    action_required: bool
    rule: str = Field(description="the documented rule that raised it")
    figures: dict[str, float | None] = Field(description="the figures that raised it")


class Dashboard(BaseModel):
    dashboard_id: str
    generated_at: str = Field(description="when the figures were computed (UTC)")
    metrics: DashboardMetrics
    trends: DashboardTrends
    alerts: list[DashboardAlert]
    details: dict[str, Any] = Field(
        description="period, revenue series, forecast and backtest, customer and operations "
        "counts, ignored rows and how the answer was served (cache)"
    )


# -- business optimization cycles (aia_engine/bi/cycles.py; docs/bi-optimization.md) ---------


class PlanStrategy(BaseModel):
    strategy: str
    expected_impact: float = Field(description="expected percent change of target_metric")
    investment_required: float
    implementation_time: str = Field(description="N_days")
    target_metric: str
    risk: Literal["low", "medium", "high"]
    focus_area: str
    reason: str = Field(description="why it was chosen")


class LeftOutStrategy(BaseModel):
    strategy: str
    expected_impact: float
    investment_required: float
    implementation_time: str
    target_metric: str
    risk: Literal["low", "medium", "high"]
    focus_area: str
    reason: Literal[
        "too_risky", "too_slow", "no_impact", "over_budget", "lower_value_per_cost", "invalid_cost"
    ]
    explanation: str


class NotGeneratedStrategy(BaseModel):
    strategy: str
    focus_area: str
    reason: str = Field(description="the figures it lacks")


class PlanFigures(BaseModel):
    month: str = Field(description="the pinned reference month (YYYY-MM)")
    dashboard_ids: list[str]
    generated_at: list[str] = Field(
        description="when the dashboard the stages read was computed (one entry: one computation)"
    )


class OptimizationPlan(BaseModel):
    revenue_strategies: list[PlanStrategy]
    customer_strategies: list[PlanStrategy]
    operational_strategies: list[PlanStrategy]
    left_out: list[LeftOutStrategy]
    not_generated: list[NotGeneratedStrategy]
    total_investment: float = Field(description="never above budget_limit")
    total_expected_impact: float
    budget_limit: float
    budget_remaining: float
    risk_tolerance: Literal["low", "medium", "high"]
    horizon_days: int
    method: str
    figures: PlanFigures


class CycleLinks(BaseModel):
    self: str
    cancel: str
    task: str
    stream: str


class CycleAccepted(BaseModel):
    optimization_id: str
    status: Literal["initiated"]
    estimated_completion: str | None
    optimization_plan: OptimizationPlan | None = Field(description="null until the plan exists")
    task_id: str
    links: CycleLinks


class CycleConstraints(BaseModel):
    budget_limit: float
    time_horizon: str
    risk_tolerance: Literal["low", "medium", "high"]


class CycleStage(BaseModel):
    name: str
    agent: str
    status: str
    dependencies: list[str]
    started_at: str | None
    finished_at: str | None
    error: dict[str, Any] | None


CycleStatusName = Literal["initiated", "in_progress", "completed", "failed", "cancelled"]


class CycleSummary(BaseModel):
    optimization_id: str
    status: CycleStatusName
    task_status: str
    cycle_type: str
    focus_areas: list[str]
    constraints: CycleConstraints
    month: str | None = Field(
        description="The reference month (YYYY-MM) of the figures, pinned at submission: the "
        "plan reads GET /business-intelligence/dashboard?month=<month>'s cache entry"
    )
    created_at: str | None
    finished_at: str | None
    estimated_completion: str | None
    progress: float
    optimization_plan: OptimizationPlan | None
    task_id: str
    links: CycleLinks


class CycleView(CycleSummary):
    stages: list[CycleStage]
    error: dict[str, Any] | SkipJsonSchema[None] = Field(default=None, description="when failed")


class CycleList(BaseModel):
    cycles: list[CycleSummary]
    count: int
    next_cursor: str | None


class CycleCancelled(BaseModel):
    optimization_id: str
    status: Literal["cancelled"]
    task_id: str
    cancelled_stages: list[str]
