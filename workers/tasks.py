"""Thin Celery tasks: unpack ids, call one `aia_engine` function, return.

Names are explicit (`aia.*`) because they travel in every message; the compiler refers to
them by name, and Flower shows `task_id` and `stage` as the task's arguments.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from aia_engine.db.locks import lock_task, stage_rows
from aia_engine.publishing import relay_outbox
from aia_engine.settings import get_settings
from aia_engine.stages.reconcile import reconcile as reconcile_once
from aia_engine.stages.run import execute_stage
from aia_engine.stages.settle import settle_if_done
from aia_engine.webhooks.delivery import attempt_delivery
from aia_engine.webhooks.sweep import due_deliveries
from aia_engine.webhooks.urls import system_resolver
from workers import runtime
from workers.dispatch import send_deliveries, send_embeddings

log = logging.getLogger(__name__)


# A lost database connection (a restart, a recycled pool) is retried with backoff; anything
# an agent raises is settled by the engine and never reaches Celery.
@shared_task(
    bind=True,
    name="aia.run_stage",
    max_retries=None,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=30,
)
def run_stage(self: Task[Any, Any], task_id: str, stage: str) -> str:
    began = time.perf_counter()
    outcome = execute_stage(
        runtime.sessions(),
        task_id=task_id,
        stage=stage,
        celery_id=str(self.request.id),
        settings=get_settings(),
        timeout_errors=(SoftTimeLimitExceeded,),
    )
    log.info(
        "stage %s of task %s: %s",
        stage,
        task_id,
        outcome.kind,
        extra={
            "task_id": task_id,
            "stage": stage,
            "outcome": outcome.kind,
            "duration_ms": round((time.perf_counter() - began) * 1000, 2),
            "attempt": self.request.retries,
        },
    )
    if outcome.kind in ("retry", "wait"):
        raise self.retry(countdown=outcome.countdown, max_retries=None)
    return outcome.kind


@shared_task(name="aia.finalize")
def finalize(task_id: str) -> bool:
    """Settle a task whose stages have all ended (the reconciler's job, callable on its own)."""
    from aia_engine.clock import utcnow

    with runtime.sessions().begin() as session:
        task = lock_task(session, task_id)
        if task is None:
            return False
        return settle_if_done(session, task, stage_rows(session, task_id), now=utcnow())


@shared_task(name="aia.relay_outbox", ignore_result=True)
def relay() -> int:
    return relay_outbox(runtime.sessions(), runtime.publisher(), get_settings()).published


@shared_task(name="aia.reconcile", ignore_result=True)
def reconcile() -> str:
    return reconcile_once(runtime.sessions(), runtime.publisher(), get_settings()).summary()


@shared_task(name="aia.deliver_webhook", acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt of one webhook delivery (on the `aia.webhooks` queue)."""
    outcome = attempt_delivery(
        runtime.webhook_sessions(),
        delivery_id,
        get_settings(),
        http=runtime.webhook_http(),
        resolve=system_resolver,
        slots=runtime.endpoint_slots(),
    )
    if outcome.alerts:
        send_deliveries(current_app, outcome.alerts)
    return outcome.kind


@shared_task(name="aia.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> int:
    """Send due retries (and any delivery whose message was lost) to the webhook queue."""
    from aia_engine.clock import utcnow

    due = due_deliveries(runtime.sessions(), now=utcnow())
    send_deliveries(current_app, due)
    return len(due)


@shared_task(name="aia.prune_graph_tombstones", ignore_result=True)
def prune_graph_tombstones() -> int:
    """Forget knowledge-graph tombstones older than AIA_KG_TOMBSTONE_KEEP_VERSIONS versions."""
    from aia_engine.graph.prune import prune_tombstones
    from aia_engine.settings import get_settings

    return prune_tombstones(
        runtime.sessions(), keep_versions=get_settings().kg_tombstone_keep_versions
    )


@shared_task(name="aia.resync_quotas", ignore_result=True)
def resync_quotas() -> int:
    """Put active tasks back into the quota counters (after Redis lost its data)."""
    from aia_engine.limits.quota import ActiveTasks

    return ActiveTasks(runtime.redis_client(), runtime.sessions()).resync()


@shared_task(
    name="aia.embed_entities",
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=30,
)
def embed_entities(client_id: str) -> str:
    """Embed a client's pending entities in batches for a few seconds (queue `aia.embeddings`),
    then queue the rest as a follow-up. A worker killed mid-batch loses nothing: its rows stay
    pending (the transaction is gone), the message is redelivered (acks_late) and beat's sweep
    queues the client again once its rows are stale."""
    from aia_engine.search.indexing import embed_client

    step, remaining = embed_client(runtime.sessions(), client_id, get_settings())
    if remaining:
        send_embeddings(current_app, [client_id])
    log.info(
        "embedded %d entities of %s (%d unchanged, %d failed)%s",
        step.encoded,
        client_id,
        step.unchanged,
        step.failed,
        "; more queued" if remaining else "",
        extra={"client_id": client_id, "embedded": step.encoded, "unchanged": step.unchanged},
    )
    return f"{step.encoded} embedded"


@shared_task(name="aia.sweep_embeddings", ignore_result=True)
def sweep_embeddings() -> int:
    """Queue the clients whose entities stay pending (a lost message, a killed worker) or hold
    vectors of another model (a model change: background re-index)."""
    from aia_engine.search.encoder import NAME
    from aia_engine.search.indexing import stale_clients
    from aia_engine.search.texts import vector_model

    settings = get_settings()
    due = stale_clients(runtime.sessions(), settings, vector_model(NAME, settings))
    send_embeddings(current_app, due)
    return len(due)
