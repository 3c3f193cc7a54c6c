"""Per-process resources of a worker: the database engine and the publisher, made after fork."""

from __future__ import annotations

import os
from functools import cache

import httpx
import redis

from aia_engine.db.session import Sessions, make_engine, make_sessions
from aia_engine.publishing import PublishGate
from aia_engine.redis.connect import sync_client
from aia_engine.settings import get_settings
from aia_engine.webhooks.delivery import EndpointSlots, http_client
from workers.dispatch import CeleryPublisher


@cache
def _sessions_for(pid: int) -> Sessions:
    settings = get_settings()
    return make_sessions(
        make_engine(settings, pool_size=2, synchronous_commit=settings.worker_synchronous_commit)
    )


def sessions() -> Sessions:
    # Keyed by pid: a connection pool must never cross a fork.
    return _sessions_for(os.getpid())


@cache
def publisher() -> CeleryPublisher:
    return CeleryPublisher.from_settings(get_settings())


@cache
def gate() -> PublishGate:
    return PublishGate(get_settings().publish_backoff_s)


@cache
def _webhook_sessions_for(pid: int) -> Sessions:
    # Delivery workers run a thread pool: a connection per thread, so none waits for one and
    # no overflow connection is opened and closed per attempt.
    settings = get_settings()
    return make_sessions(
        make_engine(settings, pool_size=24, synchronous_commit=settings.worker_synchronous_commit)
    )


def webhook_sessions() -> Sessions:
    return _webhook_sessions_for(os.getpid())


@cache
def webhook_http() -> httpx.Client:
    return http_client(get_settings())


@cache
def endpoint_slots() -> EndpointSlots:
    settings = get_settings()
    client = sync_client(settings.require_redis_url(), timeout=2)
    return EndpointSlots(
        client, settings.webhook_endpoint_concurrency, settings.webhook_timeout_s + 30
    )


@cache
def redis_client() -> redis.Redis:
    return sync_client(get_settings().require_redis_url(), timeout=5)
