"""Celery settings: lower-case Celery names, every value from `aia_engine.settings.get_settings()`.

Read lazily by `workers.app` (`config_from_object`), so importing the app reads no settings.
"""

from aia_engine.settings import get_settings

_s = get_settings()

broker_url = _s.redis_url
result_backend = f"workers.results:EngineRedisBackend+{_s.redis_url}" if _s.redis_url else None
broker_connection_retry_on_startup = True
broker_connection_timeout = _s.publish_timeout_s
broker_transport_options = {
    # Above the longest stage time limit: an unacked stage is redelivered only when its worker
    # is really gone (the worker refuses to start otherwise).
    "visibility_timeout": _s.visibility_timeout_s,
    "socket_connect_timeout": _s.publish_timeout_s,
    "socket_timeout": 5.0,
    # High work overtakes a low backlog, low work never starves (AIA_QUEUE_WEIGHTS).
    "queue_order_strategy": "workers.queue_order:WeightedPriorityCycle",
}
result_backend_transport_options = {"socket_connect_timeout": _s.publish_timeout_s}
# Chord counters live in the result backend: they must outlive the longest workflow (#5237).
result_expires = _s.result_expires_s
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_concurrency = _s.worker_concurrency
worker_send_task_events = _s.worker_send_task_events
task_send_sent_event = False
task_track_started = False
worker_hijack_root_logger = False
task_default_queue = "aia.default"
# Webhook deliveries have their own queue (and workers), so a slow endpoint never delays stages.
task_routes = {
    "aia.deliver_webhook": {"queue": "aia.webhooks"},
    # Embeddings too (`aia-engine worker -Q aia.embeddings`): the model's CPU never slows stages.
    "aia.embed_entities": {"queue": "aia.embeddings"},
    "aia.sweep_embeddings": {"queue": "aia.embeddings"},
}
beat_schedule = {
    "aia-outbox-relay": {
        "task": "aia.relay_outbox",
        "schedule": _s.relay_interval_s,
        "options": {"queue": "aia.default", "expires": _s.relay_interval_s * 3},
    },
    "aia-webhook-sweep": {
        "task": "aia.sweep_webhooks",
        "schedule": _s.webhook_sweep_interval_s,
        "options": {"queue": "aia.default", "expires": _s.webhook_sweep_interval_s * 3},
    },
    "aia-graph-tombstones": {
        "task": "aia.prune_graph_tombstones",
        "schedule": 3600.0,
        "options": {"queue": "aia.default", "expires": 3600},
    },
    "aia-quota-resync": {
        "task": "aia.resync_quotas",
        "schedule": 60.0,
        "options": {"queue": "aia.default", "expires": 120},
    },
    "aia-embedding-sweep": {
        "task": "aia.sweep_embeddings",
        "schedule": _s.search_embed_sweep_s,
        "options": {"queue": "aia.embeddings", "expires": _s.search_embed_sweep_s * 3},
    },
    "aia-reconcile": {
        "task": "aia.reconcile",
        "schedule": _s.reconcile_interval_s,
        "options": {"queue": "aia.default", "expires": _s.reconcile_interval_s * 3},
    },
}
