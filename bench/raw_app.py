"""The engine's Celery app plus raw-Celery baseline tasks, so one worker serves both in a run."""

from __future__ import annotations

from workers.app import app


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """The raw baseline: does nothing (the bench counts runs with `celery inspect stats`)."""


@app.task(name="bench.noop_result")
def noop_result(*_args: object) -> None:
    """A raw task whose result is stored (chains and chords need results)."""
