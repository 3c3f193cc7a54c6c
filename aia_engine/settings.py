"""One typed Settings object read from the environment (and a `.env` file).

The guide's names (`DATABASE_URL`, `REDIS_URL`, `JWT_SECRET_KEY`, ...) are honoured as they are;
every setting of our own takes the `AIA_` prefix. Nothing else in the project reads `os.environ`.
"""

from __future__ import annotations

import base64
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aia_engine.tiers import DEFAULT_TIERS, TierLimits

_PLACEHOLDER_SECRETS = {"", "change-me", "changethis", "your_development_jwt_secret_key_here"}


def _env(name: str) -> AliasChoices:
    """Accept both `AIA_<NAME>` and the guide's bare `<NAME>`."""
    return AliasChoices(f"AIA_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AIA_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    # -- services (the guide's names) -------------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    """PostgreSQL DSN. Unset: `aia-engine dev` and the tests start an embedded server."""
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    """Redis DSN used as Celery broker and result backend. Unset: embedded Redis."""
    environment: Literal["development", "dev", "test", "staging", "production"] = Field(
        default="development", validation_alias=_env("ENVIRONMENT")
    )
    debug: bool = Field(default=False, validation_alias=_env("DEBUG"))
    jwt_secret_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=_env("JWT_SECRET_KEY")
    )
    """HMAC key for access tokens, at least 32 bytes. Unset in development: a random key per
    process (`aia-engine dev` shares one with its children); required in staging/production."""
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = Field(
        default="HS256", validation_alias=_env("JWT_ALGORITHM")
    )
    jwt_expiry_minutes: int = Field(
        default=60, ge=1, le=1440, validation_alias=_env("JWT_EXPIRY_MINUTES")
    )
    api_host: str = Field(default="127.0.0.1", validation_alias=_env("API_HOST"))
    api_port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("AIA_API_PORT", "API_PORT", "PORT"),
    )
    """Also read from PORT, which process managers and platforms set for a `web` process."""
    api_shutdown_timeout_s: float = Field(default=30.0, gt=0)
    """On SIGTERM the API stops accepting and answers the requests in flight for up to this long."""

    jwt_key_id: str = "k1"
    """`kid` of JWT_SECRET_KEY; tokens are signed with it."""
    jwt_previous_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Older signing keys still accepted, as JSON {"kid": "secret"} (key rotation)."""
    jwt_issuer: str = "aia-engine"
    jwt_audience: str = "aia-api"
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    token_rate_per_client: int = Field(default=30, ge=1)
    """Token requests a client may make per minute (checked before any hashing)."""
    token_rate_per_ip: int = Field(default=60, ge=1)
    """Token requests one IP address may make per minute (checked before any hashing)."""
    secret_checks_per_process: int = Field(default=1, ge=1, le=64)
    """Client-secret (Argon2) checks one API process runs at once; the rest wait their turn
    without holding a thread. Each check takes a core for tens of milliseconds: a burst of
    logins run all at once would starve every other request (`/health` included) of CPU."""
    token_revocation_check: bool = True
    """Refuse access tokens whose refresh-token family was revoked (one Redis call per request).
    Off only to measure what it costs: such tokens then work until they expire."""
    revocation_poll_s: float = Field(default=5.0, gt=0, le=300)
    """How often each API process reloads revoked families from PostgreSQL: how soon a
    revocation takes effect when Redis is unreachable (at once otherwise)."""
    client_cache_s: float = Field(default=5.0, ge=0, le=300)
    """How long each API process trusts its answer to "is this client active?": how soon a
    client disabled by another process (the CLI) stops being served (at once in the process
    that disables it)."""
    metrics_flush_s: float = Field(default=1.0, gt=0, le=60)
    """How often each API process adds its request counts to Redis (what `/metrics` reads)."""
    rate_limit_retry_s: float = Field(default=1.0, gt=0, le=60)
    """While Redis is unreachable, how often the rate limiter tries it again."""

    webhook_encryption_key: SecretStr = Field(default=SecretStr(""))
    """Fernet key that encrypts webhook secrets at rest (`aia-engine webhook-key` makes one).
    Required in staging/production; unset in development: a random key per process
    (`aia-engine dev` shares one with its children)."""
    webhook_allow: list[str] = Field(default_factory=list)
    """Internal webhook receivers admitted despite the URL checks, as exact "host:port" entries."""
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    """Longest one delivery attempt may take (connect, send, answer)."""
    webhook_backoff_base_s: float = Field(default=10.0, gt=0)
    """First retry delay; each later one doubles (with jitter) up to `webhook_backoff_max_s`."""
    webhook_backoff_max_s: float = Field(default=4 * 3600.0, gt=0)
    webhook_retry_window_s: float = Field(default=86_400.0, gt=0)
    """A delivery still failing this long after its event is given up."""
    webhook_retry_after_max_s: float = Field(default=3600.0, gt=0)
    """Largest `Retry-After` (on 429 or 503) honoured; longer asks wait this long."""
    webhook_disable_after_s: float = Field(default=86_400.0, gt=0)
    """An endpoint failing every attempt for this long is disabled (one `system.alert`)."""
    webhook_endpoint_concurrency: int = Field(default=4, ge=1)
    """Attempts in flight to one endpoint at once, so a slow endpoint holds few workers."""
    webhook_sweep_interval_s: float = Field(default=5.0, gt=0)
    """How often beat sends due retries (and deliveries whose first send was lost)."""
    webhook_response_max_bytes: int = Field(default=1024, ge=0)
    """How much of a receiver's answer the delivery log keeps."""
    event_poll_interval_s: float = Field(default=0.02, gt=0)
    """How often the event pump looks for new task events when idle."""
    event_batch_size: int = Field(default=500, ge=1)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    """A comment line on idle streams this often, so proxies keep them open."""
    sse_max_streams_per_client: int = Field(default=20, ge=1)
    """Open event streams one client may hold, across all API processes."""
    health_interval_s: float = Field(default=2.0, gt=0)
    """How often each API process checks PostgreSQL, Redis and the workers for `/health`, in
    the background (a request only reads the last results)."""
    health_grace_s: float = Field(default=10.0, ge=0)
    """`/health` reports a failing dependency only once it has failed for this long, so one
    missed ping does not make a load balancer's probe flap (recovery shows at once)."""
    alert_check_interval_s: float = Field(default=30.0, gt=0)
    alert_no_worker_s: float = Field(default=60.0, gt=0)
    """Alert when no worker has answered a ping for this long."""
    alert_queue_backlog: int = Field(default=10_000, ge=1)
    """Alert when a queue holds more messages than this."""

    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line (request and stage lines carry their ids and timing)."""
    log_level: str = "INFO"

    # -- HTTP API ---------------------------------------------------------------------------
    contract_check: Literal["log", "raise"] = "log"
    """An answer that does not fit the model its route declares: `log` an error and answer it
    as it is (the work is done; never a 500 for it), or `raise` (the tests: a 500 E500)."""
    rate_limits_enabled: bool = True
    task_quotas_enabled: bool = True
    """Enforce each tier's `max_active_tasks`."""
    rate_limit_tiers: dict[str, TierLimits] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    """Per tier: per_hour, per_minute, burst, max_active_tasks (JSON; the guide's by default)."""
    rate_limit_share: int | None = Field(default=None, ge=1)
    """While Redis is down each API process limits alone to 1/share of the tier (default:
    AIA_API_WORKERS). Set it to the number of API processes across all machines."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_json_depth: int = Field(default=32, ge=2)
    request_timeout_s: float = Field(default=30.0, gt=0)
    """The guide's per-request timeout; a slower request answers 504."""
    batch_max_tasks: int = Field(default=100, ge=1, le=10_000)
    kg_write_max_items: int = Field(default=1000, ge=1, le=100_000)
    """Entities, relationships or ids one knowledge-graph write request may carry (bulk loads
    go through `aia-engine kg import`)."""
    kg_idempotency_hours: float = Field(default=24.0, gt=0)
    """How long a knowledge-graph write's Idempotency-Key is remembered (its answer replayed)."""
    api_workers: int = Field(default=1, ge=1)
    """uvicorn worker processes for `aia-engine serve`."""

    # -- scripts talking to the API (`aia-engine batch`, `aia_engine.client`) ----------------
    api_url: str = "http://127.0.0.1:8000"
    """The API that `aia-engine batch` sends to."""
    client_id: str = ""
    """OAuth2 client credentials of `aia-engine batch` (`aia-engine clients create` makes them)."""
    client_secret: SecretStr = Field(default=SecretStr(""))

    # -- engine -----------------------------------------------------------------------------
    data_dir: Path = Path(".aia")
    """Where `aia-engine dev` keeps the embedded PostgreSQL and Redis data."""
    max_stages: int = Field(default=100, ge=1, le=1000)
    """Largest workflow accepted (stages)."""
    dataset_max_bytes: int = Field(default=268_435_456, ge=1)
    """Largest dataset file accepted (`POST /datasets`, `aia-engine datasets add|upload`), in
    bytes as sent: counted while it streams in, so nothing past the limit is stored."""
    dataset_max_records: int = Field(default=10_000_000, ge=1)
    """Most records a dataset may hold."""
    dataset_upload_timeout_s: float = Field(default=900.0, gt=0)
    """Time a `POST /datasets` upload may take (AIA_REQUEST_TIMEOUT_S is too short for 256 MiB
    on a slow link); past it the upload answers 504 and nothing is stored."""
    dataset_max_record_bytes: int = Field(default=1_048_576, ge=64)
    """Bytes one record may take (a CSV record's lines, a JSON Lines line, a JSON array's item),
    checked while it is read: a larger one answers 413 and nothing is stored."""
    dataset_upload_concurrency: int = Field(default=2, ge=1)
    """Uploads (`POST /datasets`) one API process runs at once, each on its own thread and
    database connection beside the request threads; past it, 503 with Retry-After."""
    dataset_upload_per_client: int = Field(default=1, ge=1)
    """Uploads one client may run at once in one API process; past it, 429 with Retry-After."""
    dataset_upload_idle_s: float = Field(default=30.0, gt=0)
    """Longest wait for the next piece of an upload's body; past it, 408 and nothing stored."""
    dataset_agent_max_rows: int = Field(default=100_000, ge=1)
    """Most records an agent that needs a dataset as a list in memory is given (every built-in
    agent but data_analysis_agent, which streams); past it the stage fails with E067."""
    default_stage_timeout_s: float = Field(default=300.0, gt=0)
    """Soft time limit of a stage that sets no `timeout_s`."""
    max_stage_timeout_s: float = Field(default=900.0, gt=0)
    """Largest `timeout_s` a stage may ask for (the most time one stage may hold a worker
    process); the broker visibility timeout must exceed it."""
    stage_hard_limit_grace_s: float = Field(default=10.0, ge=1)
    """Seconds between a stage's soft limit (the agent is told) and its hard kill."""
    max_stage_retries: int = Field(default=10, ge=0)
    max_stage_output_bytes: int = Field(default=4_194_304, ge=1024)
    """Largest stage output stored (bytes of its JSON); a larger one fails the stage (E020)."""
    max_stage_redispatches: int = Field(default=5, ge=0)
    """How many times a stage is run again after a run that recorded no outcome (its worker
    died, its lease ran out); the next loss fails it as lost (E021)."""
    max_workflow_duration_s: float = Field(default=86_400.0, gt=0)
    """Longest a workflow may take end to end; Celery results must outlive it (chord counters)."""
    visibility_timeout_s: float = Field(default=7_200.0, gt=0)
    """Redis broker visibility timeout: an unacked message is redelivered after this long."""
    result_expires_s: float = Field(default=3 * 86_400.0, gt=0)
    """Celery result expiry (chord counters live in the result backend)."""
    publish_timeout_s: float = Field(default=1.0, gt=0)
    """Longest a submission waits for the broker before leaving the work to the outbox relay."""
    publish_backoff_s: float = Field(default=2.0, ge=0)
    """After a failed publish, skip direct publishing for this long (the relay catches up)."""
    relay_interval_s: float = Field(default=2.0, gt=0)
    outbox_stale_s: float = Field(default=3.0, ge=0)
    """An outbox row unpublished for this long is re-published by the relay."""
    reconcile_interval_s: float = Field(default=10.0, gt=0)
    stuck_after_s: float = Field(default=30.0, gt=0)
    """A ready stage not started for this long is re-dispatched by the reconciler."""
    dependency_wait_s: float = Field(default=0.5, gt=0)
    """Back-off of a stage whose dependencies are not finished in PostgreSQL yet."""
    progress_throttle_s: float = Field(default=0.5, ge=0)
    """Minimum seconds between two persisted progress updates of one stage."""
    stage_fast_path: bool = True
    """Claim and complete stages with the server-side SQL of migration 0004 (one round trip
    each); off, the Python runner does everything (the reference behaviour)."""
    worker_synchronous_commit: Literal["on", "off", "local", "remote_write", "remote_apply"] = "on"
    """PostgreSQL `synchronous_commit` of worker connections. `on`: a stage's claim and outcome
    are on disk before anyone is told. `off` is faster but a database crash can forget the
    last fraction of a second of completions (see docs/operations.md)."""
    agent_modules: list[str] = Field(default_factory=list)
    """Python modules imported at start (API and workers) to register more agents (JSON list)."""
    worker_concurrency: int = Field(default=2, ge=1)
    queue_weights: dict[str, int] = Field(
        default_factory=lambda: {"high": 6, "medium": 3, "low": 1}
    )
    """How often a worker leads with each priority's queue when all hold work (JSON); an empty
    queue hands its turn on, so high work overtakes a low backlog and low work never starves."""
    worker_send_task_events: bool = True
    """Celery task events, which Flower shows."""
    flower_address: str = "127.0.0.1"
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_basic_auth: SecretStr = Field(default=SecretStr(""))
    """Flower's logins, "user:password" (several separated by commas); `aia-engine flower`
    refuses to start without one."""
    flower_db: Path | None = None
    """Where Flower keeps its history across restarts (default: AIA_DATA_DIR/flower.db)."""
    flower_state_save_interval_s: float = Field(default=30.0, gt=0)
    flower_max_tasks: int = Field(default=100_000, ge=100)
    """Tasks Flower keeps in memory (and in its database)."""
    db_pool_size: int = Field(default=5, ge=1)
    """Database connections per worker or CLI process."""
    api_db_pool_size: int = Field(default=20, ge=1)
    """Database connections per API process (its thread pool runs up to 40 requests at once)."""

    # -- knowledge graph queries (docs/knowledge-graph.md) --------------------------------------
    kg_query_max_chars: int = Field(default=2_000, ge=100)
    """Longest Cypher query text accepted (characters); longer answers E033."""
    kg_query_timeout_s: float = Field(default=5.0, gt=0)
    """A query running longer is stopped and answers E033 (limit timeout_s)."""
    kg_query_max_rows: int = Field(default=10_000, ge=1)
    """Rows a query answers at most; more are cut off and metadata.truncated is true."""
    kg_query_max_matches: int = Field(default=1_000_000, ge=1000)
    """Pattern matches a query may collect before it is stopped (E033, limit max_matches)."""
    kg_query_max_result_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    """Largest answer (JSON bytes of `results`); larger answers E033 (the guide's 100MB)."""
    kg_cache_max_items: int = Field(default=1_000_000, ge=1000)
    """Nodes + relationships of the client graphs cached per process (least recently queried
    graphs go first; measured ~0.9 KB per item, so ~0.9 GB at the default)."""
    kg_tombstone_keep_versions: int = Field(default=10_000, ge=1)
    """Deletion records kept per graph, in versions: a cached graph further behind than this
    reloads instead of catching up (beat prunes the older ones hourly)."""
    kg_query_concurrency: int = Field(default=2, ge=1)
    """Graph queries running at once per API process (CPU-bound: about the cores)."""

    # -- semantic search: indexing and storage (docs/semantic-search.md) ----------------------
    search_embed_batch: int = Field(default=16, ge=1, le=1024)
    """Entities one embedding step encodes at once (on the `aia.embeddings` queue). A step holds
    its entities' rows while it encodes, and a graph write re-marking one of them waits for it:
    16 keeps that under ~0.1 s, at the throughput of larger batches (bench/README.md)."""
    search_embed_task_s: float = Field(default=5.0, gt=0)
    """An embedding task takes batches for about this long, then queues its follow-up."""
    search_embed_sweep_s: float = Field(default=10.0, gt=0)
    """How often beat's sweep looks for entities left pending (and vectors of another model)."""
    search_embed_stale_s: float = Field(default=30.0, gt=0)
    """Pending this long (its message lost, its worker killed), an entity is queued again."""
    search_embed_max_attempts: int = Field(default=3, ge=1)
    """Failed encodings of one entity's text before its status is `failed`."""
    search_cache_max_vectors: int = Field(default=500_000, ge=1000)
    """Vectors the exact (numpy) path keeps in memory per process, all clients together (about
    1.5 KB each: ~750 MB at the default); least recently searched clients go first."""
    search_hnsw_ef_search: int = Field(default=100, ge=10, le=1000)
    """pgvector's hnsw.ef_search for a search (at least twice its limit is used)."""
    # -- semantic search (docs/semantic-search.md) ----------------------------------------------
    search_query_max_chars: int = Field(default=1000, ge=10)
    """Longest semantic-search query text (characters); longer answers E062. The model reads at
    most 256 word pieces (about 1000 characters of English) anyway."""
    search_explain_top: int = Field(default=10, ge=0, le=100)
    """Results whose match_explanation compares each of their fields with the query (one
    embedding per field not seen before); the others name the query terms found only."""
    search_concurrency: int = Field(default=2, ge=1)
    """Semantic searches running at once per API process (the query's embedding is CPU-bound)."""
    # -- semantic search: the encoder and the embedded text (docs/semantic-search.md) -------------
    search_encoder_threads: int = Field(default=2, ge=1, le=64)
    """Threads one encoding uses (onnxruntime intra-op threads; about the cores a process may use:
    2 on the reference machine)."""
    search_encoder_batch_size: int = Field(default=32, ge=1, le=1024)
    """Texts run through the model at once inside one encode call (texts of similar length are
    batched together, so padding costs little)."""
    search_text_fields: dict[str, list[str]] = Field(default_factory=dict)
    """What is embedded for an entity, per type, as JSON {"type": ["field.path", ...]}: the type,
    the name, then those properties in that order. A type not listed gets every string property
    and number (as "key: value", sorted by key)."""
    search_text_max_chars: int = Field(default=2000, ge=100, le=100_000)
    """Longest text embedded for an entity (characters; the model reads 256 word pieces at most,
    about 1,000 characters of English)."""
    # -- business intelligence (docs/business-intelligence.md) ----------------------------------
    bi_dashboard_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    """A cached dashboard is served as it is for this long after it was computed."""
    bi_dashboard_stale_s: float = Field(default=600.0, gt=0, le=86_400)
    """Past the TTL and up to this age, a cached dashboard is still served while one background
    recompute replaces it; older, it is recomputed inline. Must be longer than the TTL."""
    bi_dashboard_concurrency: int = Field(default=2, ge=1, le=64)
    """Dashboard computations per API process at once: this many on a miss (their own threads)
    and this many background recomputes."""
    bi_dashboard_wait_s: float = Field(default=10.0, gt=0, le=120)
    """A request waits this long for a computation slot, and as long for another request's
    computation of the same dashboard; then it gets the cached entry at any age, else 503."""
    bi_health_sample_s: float = Field(default=60.0, gt=0, le=3600)
    """How often the beat process records the engine's health (the dashboard's uptime)."""
    bi_history_keep_days: int = Field(default=90, ge=31, le=3650)
    """Health samples and per-client request figures older than this are pruned."""
    bi_cycles_per_day: int = Field(default=10, ge=1, le=100_000)
    """Optimization cycles (POST /business-intelligence/execute-cycle) a client may start in any
    24 hours (the guide's 10 per day); one more answers 429 with Retry-After."""

    @field_validator("queue_weights")
    @classmethod
    def _known_priorities(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - {"high", "medium", "low"}
        if unknown:
            raise ValueError(f"AIA_QUEUE_WEIGHTS: unknown priorities {sorted(unknown)}")
        if any(w < 1 for w in value.values()):
            raise ValueError("AIA_QUEUE_WEIGHTS: every weight must be at least 1 (0 starves)")
        return value

    @field_validator("search_text_fields")
    @classmethod
    def _text_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for node_type, paths in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", node_type):  # graph.model.TYPE_RE
                raise ValueError(f"AIA_SEARCH_TEXT_FIELDS: {node_type!r} is not an entity type")
            for path in paths:
                if not path or any(not part for part in path.split(".")):
                    raise ValueError(
                        f"AIA_SEARCH_TEXT_FIELDS[{node_type!r}]: {path!r} is not a field path "
                        "(property names joined by dots, e.g. 'address.city')"
                    )
        return value

    @field_validator("flower_basic_auth")
    @classmethod
    def _logins(cls, value: SecretStr) -> SecretStr:
        for login in filter(None, value.get_secret_value().split(",")):
            user, _, password = login.partition(":")
            if not user or len(password) < 8:
                raise ValueError(
                    "AIA_FLOWER_BASIC_AUTH must be user:password pairs, each password at "
                    "least 8 characters"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError(
                "DATABASE_URL must be a postgresql:// URL; PostgreSQL is the only database"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ValueError(
                "REDIS_URL must be a redis://, rediss://, redis+socket:// or unix:// URL"
            )
        if value.startswith("unix://"):  # Celery's broker and backend read only kombu's spelling
            value = "redis+socket://" + value.removeprefix("unix://")
        return value

    @model_validator(mode="after")
    def _dashboard_stale_after_fresh(self) -> Settings:
        if self.bi_dashboard_stale_s <= self.bi_dashboard_ttl_s:
            raise ValueError(
                f"AIA_BI_DASHBOARD_STALE_S ({self.bi_dashboard_stale_s:g}) must be longer than "
                f"AIA_BI_DASHBOARD_TTL_S ({self.bi_dashboard_ttl_s:g}): a dashboard is served "
                "stale only after its fresh period"
            )
        return self

    @model_validator(mode="after")
    def _enforce_real_secrets(self) -> Settings:
        secret = self.jwt_secret_key.get_secret_value()
        if self.environment in ("staging", "production") and secret in _PLACEHOLDER_SECRETS:
            raise ValueError(
                f"JWT_SECRET_KEY must be set to a real secret when ENVIRONMENT={self.environment}"
            )
        minimum = {"HS256": 32, "HS384": 48, "HS512": 64}[self.jwt_algorithm]
        if not secret:
            # Development without a key: a random one for this process (`aia-engine dev` hands
            # its children the same one).
            object.__setattr__(self, "jwt_secret_key", SecretStr(secrets.token_urlsafe(64)))
        elif len(secret.encode()) < minimum:
            raise ValueError(
                f"JWT_SECRET_KEY must be at least {minimum} bytes for {self.jwt_algorithm} (RFC 7518 §3.2)"
            )
        for kid, key in self.jwt_previous_keys.items():
            if len(key.get_secret_value().encode()) < minimum:
                raise ValueError(f"AIA_JWT_PREVIOUS_KEYS[{kid!r}] must be at least {minimum} bytes")
        if not self.webhook_encryption_key.get_secret_value():
            if self.environment in ("staging", "production"):
                raise ValueError(
                    f"AIA_WEBHOOK_ENCRYPTION_KEY must be set when ENVIRONMENT={self.environment}"
                )
            object.__setattr__(
                self,
                "webhook_encryption_key",
                SecretStr(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()),
            )
        if self.visibility_timeout_s <= self.max_stage_timeout_s + self.stage_hard_limit_grace_s:
            raise ValueError(
                "AIA_VISIBILITY_TIMEOUT_S must exceed AIA_MAX_STAGE_TIMEOUT_S plus "
                "AIA_STAGE_HARD_LIMIT_GRACE_S, or running stages would be delivered twice"
            )
        if self.result_expires_s <= self.max_workflow_duration_s:
            raise ValueError(
                "AIA_RESULT_EXPIRES_S must exceed AIA_MAX_WORKFLOW_DURATION_S, or chord counters "
                "expire before long workflows join (celery/celery#5237)"
            )
        return self

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set; run `aia-engine dev` for embedded services or set it"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "REDIS_URL is not set; run `aia-engine dev` for embedded services or set it"
            )
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
