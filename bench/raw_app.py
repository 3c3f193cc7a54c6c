"""The engine's Celery app plus raw-Celery baseline tasks, so one worker serves both in a run."""

from __future__ import annotations

import json
import time
from functools import cache

import httpx

from workers.app import app


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """The raw baseline: does nothing (the bench counts runs with `celery inspect stats`)."""


@app.task(name="bench.noop_result")
def noop_result(*_args: object) -> None:
    """A raw task whose result is stored (chains and chords need results)."""


@app.task(name="bench.work_then_notify", ignore_result=True)
def work_then_notify(url: str) -> None:
    """Raw baseline for webhooks: the work ends, then a notification task on the webhook queue
    POSTs its end time (what a hand-rolled Celery notifier does, with no log, no signing)."""
    app.send_task("bench.post", args=(url, time.time()), queue="aia.webhooks")


@app.task(name="bench.post", ignore_result=True)
def post(url: str, ended_at: float) -> None:
    _client().post(url, content=json.dumps({"ended_at": ended_at}).encode())


@cache
def _client() -> httpx.Client:
    return httpx.Client(timeout=10)
