"""The engine's Celery app plus raw-Celery baseline tasks, so one worker serves both in a run."""

from __future__ import annotations

from workers.app import app


@app.task(name="bench.noop", ignore_result=True)
def noop(key: str | None = None) -> None:
    """The raw baseline: does nothing but count itself, so the bench knows when all are done."""
    if key:
        with app.connection_for_write() as conn:
            conn.default_channel.client.incr(key)


@app.task(name="bench.noop_result")
def noop_result(*_args: object) -> None:
    """A raw task whose result is stored (chains and chords need results)."""
