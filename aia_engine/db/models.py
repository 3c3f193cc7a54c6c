"""SQLAlchemy 2 rows: tasks, stage runs, task events and the outbox. PostgreSQL only."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class TaskStatus(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


TERMINAL_TASK = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
TERMINAL_STAGE = frozenset(
    {StageStatus.COMPLETED, StageStatus.FAILED, StageStatus.SKIPPED, StageStatus.CANCELLED}
)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        datetime: DateTime(timezone=True),
    }


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    task_type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    requirements: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    workflow: Mapped[dict[str, Any]]
    assigned_agents: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.ACCEPTED)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    partial_results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    results: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    estimated_completion: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key", name="uq_tasks_client_idempotency"),
        Index("ix_tasks_client_created", "client_id", "created_at"),
        Index("ix_tasks_client_finished", "client_id", "finished_at"),
        Index(
            "ix_tasks_active",
            "status",
            postgresql_where=text("status IN ('accepted', 'queued', 'in_progress')"),
        ),
    )


class StageRun(Base):
    __tablename__ = "stage_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    agent: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    dependencies: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20), default=StageStatus.PENDING)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    # Runs that ended without recording an outcome and were made again (AIA_MAX_STAGE_REDISPATCHES).
    redispatches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    celery_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    partial_results: Mapped[dict[str, Any] | None]
    output: Mapped[dict[str, Any] | None]
    error: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        UniqueConstraint("task_id", "name", name="uq_stage_runs_task_name"),
        Index("ix_stage_runs_agent_finished", "agent", "finished_at"),
    )


class TaskEvent(Base):
    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    """NULL for an event that belongs to no task (a knowledge-graph change): `client_id` owns it."""
    client_id: Mapped[str | None] = mapped_column(String(128))
    """The owner of a task-less event; NULL for task events (their task names the client)."""
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(50))
    stage: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    pos: Mapped[int | None] = mapped_column(BigInteger)
    """Place in the published stream (commit order), set by the event pump; NULL until then."""
    progress: Mapped[float | None] = mapped_column(Float)
    """The task's progress right after this change (NULL on rows older than revision 0014)."""

    __table_args__ = (
        UniqueConstraint("task_id", "seq", name="uq_task_events_task_seq"),
        CheckConstraint(
            "task_id IS NOT NULL OR client_id IS NOT NULL", name="ck_task_events_owner"
        ),
    )


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30), default="dispatch")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
    )


class ApiClient(Base):
    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(20), default="developer")
    scopes: Mapped[list[Any]]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    secret_rotated_at: Mapped[datetime | None]


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("api_clients.client_id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "ix_refresh_tokens_revoked_at",
            "revoked_at",
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]]
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(Base):
    """One event for one endpoint: the body is fixed, each attempt re-signs it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(50))
    task_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    """When the next attempt is due (NULL once delivered or given up)."""
    enqueued_at: Mapped[datetime | None]
    """When a message to attempt it was last sent to the broker (the sweeper re-sends old ones)."""
    lease_until: Mapped[datetime | None]
    """An attempt is in flight until then (a worker that died mid-attempt frees it)."""
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SystemAlert(Base):
    """An alert, recorded once per `dedupe_key`; `client_id` NULL means every client."""

    __tablename__ = "system_alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    client_id: Mapped[str | None] = mapped_column(String(128))
    alert_type: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserActivity(Base):
    __tablename__ = "user_activity"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    activity_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    """`tracked` (reported by the client) or `api` (a request with X-User-ID)."""
    endpoint: Mapped[str | None] = mapped_column(String(512))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_time_ms: Mapped[float | None] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_user_activity_client_user_time", "client_id", "user_id", "occurred_at"),
    )


class TaskTypeRow(Base):
    """An operator-defined task type: a name bound to a workflow, beside the built-in templates."""

    __tablename__ = "task_types"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    workflow: Mapped[list[Any]]
    """The stages as a list (`[{"name": ..., "agent": ...}]`), which keeps their order."""
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Dataset(Base):
    """Named records for agents (`requirements.data_source` / `dataset_id`). `client_id` NULL:
    shared (added by the operator); otherwise that client's own, seen by it alone."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    client_id: Mapped[str | None] = mapped_column(String(128))
    public_id: Mapped[str] = mapped_column(String(27), unique=True)
    """`ds_` + 24 hex digits: what the HTTP API and `requirements.dataset_id` name."""
    schema: Mapped[dict[str, Any]]
    """{"columns": [{"name", "type", "nulls"}, ...]} (aia_engine/datasets/schema.py)."""
    format: Mapped[str] = mapped_column(String(16))
    record_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    fields: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # One name per owner; shared rows (NULL owner) are one owner too.
        Index("uq_datasets_name_owner", "name", text("coalesce(client_id, '')"), unique=True),
    )


class DatasetRow(Base):
    """One record of a dataset, numbered from 1 in file order."""

    __tablename__ = "dataset_rows"

    dataset_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    record: Mapped[dict[str, Any]]


class KgGraph(Base):
    """One client's knowledge graph: its version (one more per write) and its size."""

    __tablename__ = "kg_graphs"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    nodes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    relationships: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tombstones_from: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """Tombstones of versions up to this one were pruned: a cache that old reloads."""
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class KgNode(Base):
    __tablename__ = "kg_nodes"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(BigInteger)
    """The graph version that last wrote this node."""
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("ix_kg_nodes_client_version", "client_id", "version"),
        Index("ix_kg_nodes_client_type", "client_id", "type"),
    )


class KgRelationship(Base):
    __tablename__ = "kg_relationships"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    relationship_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(
            ["client_id", "source_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_relationships_source", ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["client_id", "target_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_relationships_target", ondelete="CASCADE",
        ),
        Index("ix_kg_relationships_client_version", "client_id", "version"),
        Index("ix_kg_relationships_client_type", "client_id", "type"),
        Index("ix_kg_relationships_source", "client_id", "source_id"),
        Index("ix_kg_relationships_target", "client_id", "target_id"),
    )  # fmt: skip


class KgTombstone(Base):
    """What a graph version deleted (`kind` node or relationship), for caches catching up."""

    __tablename__ = "kg_tombstones"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("kind IN ('node', 'relationship')", name="ck_kg_tombstones_kind"),
        Index("ix_kg_tombstones_client_version", "client_id", "version"),
    )


class KgIdempotency(Base):
    """The answer of a knowledge-graph write sent with an Idempotency-Key, per client and key."""

    __tablename__ = "kg_idempotency"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    """Which write the key was used for (e.g. `upsert_nodes`)."""
    request_hash: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_kg_idempotency_client_created", "client_id", "created_at"),)


class KgEmbedding(Base):
    """The embedding of one node's text (semantic search). Where the `vector` extension exists,
    the table also has `vec vector(384)` with an HNSW index (added by migration 0019 only there,
    so it is not mapped here: aia_engine/search/store.py reads and writes it in SQL)."""

    __tablename__ = "kg_embeddings"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    """`pending` (its current text waits for a worker), `embedded` or `failed`."""
    model: Mapped[str | None] = mapped_column(Text)
    """The encoder (name and version) that made `embedding`."""
    text_hash: Mapped[str | None] = mapped_column(Text)
    embedding: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    requested: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The graph version of the write that last made this row pending."""
    seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The client's embedding version (kg_embedding_state) that stored `embedding`."""
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(
            ["client_id", "node_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_embeddings_node", ondelete="CASCADE",
        ),
        CheckConstraint(
            "status IN ('pending', 'embedded', 'failed')", name="ck_kg_embeddings_status"
        ),
        Index("ix_kg_embeddings_client_seq", "client_id", "seq"),
        Index("ix_kg_embeddings_model", "model", "client_id"),
        Index("ix_kg_embeddings_pending", "updated_at", postgresql_where=text("status = 'pending'")),
    )  # fmt: skip


class KgEmbeddingState(Base):
    """A client's embedding version: one more with every batch of vectors stored."""

    __tablename__ = "kg_embedding_state"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    busy_until: Mapped[datetime | None]
    """A task is embedding this client's entities until then (beat's sweep leaves it alone)."""


class BiCycle(Base):
    """A business optimization cycle (POST /business-intelligence/execute-cycle): its request
    and the task whose workflow runs it. Status, stages and the plan are the task's."""

    __tablename__ = "bi_cycles"

    optimization_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    request: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        # The daily quota counts a client's cycles of the last 24 hours; lists page by it too.
        Index("ix_bi_cycles_client_created", "client_id", "created_at"),
    )


class HealthSample(Base):
    """One health check of the engine, written by the beat process (aia_engine/ops/health_history.py)."""

    __tablename__ = "health_samples"

    sampled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    healthy: Mapped[bool]
    services: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """Each check's result: `healthy` or `unhealthy: ...`."""


class ApiRequestStat(Base):
    """A client's API requests in one minute and their summed duration (metrics/client_requests.py)."""

    __tablename__ = "api_request_stats"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)
    total_ms: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_api_request_stats_minute", "minute"),)
