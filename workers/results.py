"""The Redis result backend, minus result subscriptions.

Celery's Redis backend SUBSCRIBEs to a result channel for every task published outside a worker,
so that `AsyncResult.get()` can return. The engine never waits on Celery results (PostgreSQL is
the truth), so those subscriptions would only cost Redis commands and leak connections. Chords
still join through the backend's counters, which this class leaves untouched.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class EngineRedisBackend(RedisBackend):
    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None

    def on_result_fulfilled(self, result: Any) -> None:
        # Nothing was subscribed, so there is nothing to unsubscribe (this runs in
        # AsyncResult.__del__, even at interpreter shutdown).
        return None
