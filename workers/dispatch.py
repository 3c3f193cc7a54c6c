"""The one place a canvas is sent: compile the workflow and `apply_async` it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.canvas import Signature

from aia_engine.settings import Settings
from workers.messages import is_plain, plain_message
from workflows.compiler import CompileOptions, compile_workflow
from workflows.spec import WorkflowSpec


@dataclass
class CeleryPublisher:
    """`aia_engine.publishing.Publisher` over Celery."""

    app: Celery
    default_timeout_s: float
    hard_limit_grace_s: float
    publish_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings, app: Celery | None = None) -> CeleryPublisher:
        if app is None:
            from workers.app import app as default_app

            app = default_app
        return cls(
            app,
            settings.default_stage_timeout_s,
            settings.stage_hard_limit_grace_s,
            settings.publish_timeout_s,
        )

    def publish(self, task_id: str, spec: WorkflowSpec, *, priority: str) -> None:
        options = CompileOptions(self.default_timeout_s, self.hard_limit_grace_s, priority)
        canvas = compile_workflow(spec, task_id=task_id, options=options)
        # retry=False: a down broker must fail fast; the outbox relay publishes later.
        _bind(canvas, self.app).apply_async(retry=False)

    def publish_many(self, items: list[tuple[str, WorkflowSpec, str]]) -> None:
        """Publish several workflows at once: one-stage workflows as ready-made messages in one
        Redis pipeline, the rest through kombu's pipelined producer batches."""
        canvases = [
            compile_workflow(
                spec,
                task_id=task_id,
                options=CompileOptions(self.default_timeout_s, self.hard_limit_grace_s, priority),
            )
            for task_id, spec, priority in items
        ]
        plain = [c for c in canvases if is_plain(c)]
        other = [c for c in canvases if not is_plain(c)]
        if plain:
            reply_to = str(self.app.thread_oid)
            messages = [plain_message(c, reply_to=reply_to) for c in plain]
            # A pooled broker connection: a new one per flush costs a Redis connect and
            # kombu's transport lookup.
            with self.app.connection_or_acquire() as conn:
                client = conn.default_channel.client
                with client.pipeline(transaction=False) as pipe:
                    for queue, payload in messages:
                        pipe.lpush(queue, payload)
                    pipe.execute()
        if other:
            with self.app.producer_or_acquire() as producer, producer.batch():
                for canvas in other:
                    _bind(canvas, self.app).apply_async(producer=producer, retry=False)

    def revoke(self, celery_ids: list[str]) -> None:
        self.app.control.revoke(celery_ids, terminate=True, signal="SIGTERM")


def _bind(sig: Signature[Any], app: Celery) -> Signature[Any]:
    """Make every node of a canvas use `app` (signatures built by name default to current_app)."""
    sig._app = app  # type: ignore[attr-defined]
    kind = sig.get("subtask_type")
    if kind in ("chain", "group"):
        for task in sig.tasks:  # type: ignore[attr-defined]
            _bind(task, app)
    elif kind == "chord":
        for task in sig.tasks:  # type: ignore[attr-defined]
            _bind(task, app)
        _bind(sig.body, app)  # type: ignore[attr-defined]
    return sig


WEBHOOK_QUEUE = "aia.webhooks"


def send_deliveries(app: Celery, delivery_ids: Sequence[str]) -> None:
    """Queue one `aia.deliver_webhook` message per delivery, pipelined, on the webhook queue."""
    if not delivery_ids:
        return
    with app.producer_or_acquire() as producer, producer.batch():
        for delivery_id in delivery_ids:
            app.signature(
                "aia.deliver_webhook", args=(delivery_id,), queue=WEBHOOK_QUEUE
            ).apply_async(producer=producer, retry=False)


EMBEDDING_QUEUE = "aia.embeddings"


def send_embeddings(app: Celery, client_ids: Sequence[str]) -> None:
    """Queue one `aia.embed_entities` message per client, pipelined, on the embedding queue."""
    if not client_ids:
        return
    with app.producer_or_acquire() as producer, producer.batch():
        for client_id in client_ids:
            app.signature(
                "aia.embed_entities", args=(client_id,), queue=EMBEDDING_QUEUE
            ).apply_async(producer=producer, retry=False)
