"""The Celery app. Settings come from `celeryconfig`, read lazily."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, beat_init, worker_init

from aia_engine.graph import embedding_marks as indexing

log = logging.getLogger(__name__)
app = Celery("aia_engine")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)


def _queue_embeddings(client_ids: Sequence[str]) -> None:
    from workers.dispatch import send_embeddings

    send_embeddings(app, client_ids)


# Every process that loads the app (API, workers, beat) queues the embedding of the entities a
# graph write of its own changed, once the write commits (aia_engine.search.indexing).
indexing.set_notifier(_queue_embeddings)


@worker_init.connect
def _prepare_worker(sender: Any = None, **_: Any) -> None:
    from aia_engine.agents import known_agents
    from aia_engine.agents.registry import AgentModuleError
    from aia_engine.settings import get_settings
    from workers.safety import UnsafeWorkerConfig, check_worker

    # Load the agents (built-ins and entry points) once in the parent, before the pool forks,
    # so no child pays for it on its first stage and a broken plugin shows at start.
    try:
        log.info("agents: %s", ", ".join(known_agents()))
    except AgentModuleError as exc:
        raise SystemExit(f"aia-engine: {exc}") from exc
    try:
        check_worker(app.conf, get_settings())
    except UnsafeWorkerConfig as exc:
        # Celery logs and swallows exceptions from signal handlers; SystemExit gets through.
        raise SystemExit(f"aia-engine: {exc}") from exc


def result_backend_url(redis_url: str) -> str:
    """The result backend URL for `redis_url`: Redis, without per-task result subscriptions."""
    return f"workers.results:EngineRedisBackend+{redis_url}"


def use_redis(redis_url: str) -> Celery:
    """Point the app at `redis_url` (for processes whose settings were completed at run time)."""
    app.conf.update(broker_url=redis_url, result_backend=result_backend_url(redis_url))
    return app


@beat_init.connect
def _start_beat_threads(sender: Any = None, **_: Any) -> None:
    from aia_engine.settings import get_settings
    from workers.beat import start_background

    start_background(app, get_settings())


@after_setup_logger.connect
def _json_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    from aia_engine.ops.logs import JsonFormatter
    from aia_engine.settings import get_settings

    if logger is not None and get_settings().log_format == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
