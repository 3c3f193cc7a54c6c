"""Waiting for tasks to end, woken by PostgreSQL rather than by polling.

A trigger (migration 0008) sends `NOTIFY aia_task_ended '<task id> <status>'` when a task
completes, fails or is cancelled, at commit. `TaskWaiter` holds one connection of its own
that LISTENs on that channel while it waits: it reads the statuses once (after LISTEN, so no
end can fall between the read and the first notification), then sleeps until a notification
names a task it waits for. It reads the statuses again every `recheck_s` regardless, so a lost
notification costs at most that long, and reconnects when the database goes away.

    with TaskWaiter.from_settings(settings) as waiter:
        statuses = waiter.wait(task_ids, timeout=600)   # {task_id: "completed" | ...}
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from aia_engine.db.models import TaskStatus
from aia_engine.settings import Settings

log = logging.getLogger(__name__)

CHANNEL = "aia_task_ended"
RECONNECT_S = 0.5
ENDED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class WaitTimeout(TimeoutError):
    """Some tasks had not ended by the deadline; `ended` holds those that had."""

    def __init__(self, pending: set[str], ended: dict[str, str], timeout: float) -> None:
        super().__init__(f"{len(pending)} task(s) had not ended after {timeout:g}s")
        self.pending = pending
        self.ended = ended


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://...`) as libpq takes it."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class TaskWaiter:
    """One listening connection; not thread-safe (use one waiter per thread)."""

    def __init__(self, database_url: str, *, recheck_s: float = 1.0) -> None:
        self.recheck_s = recheck_s
        self._url = libpq_url(database_url)
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, autocommit=True, connect_timeout=5)

    @classmethod
    def from_settings(cls, settings: Settings, *, recheck_s: float = 1.0) -> TaskWaiter:
        return cls(settings.require_database_url(), recheck_s=recheck_s)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TaskWaiter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def statuses(self, task_ids: Iterable[str]) -> dict[str, str]:
        """The current status of each task that exists."""
        rows = self._conn.execute(
            "SELECT id, status FROM tasks WHERE id = ANY(%s)", (list(task_ids),)
        ).fetchall()
        return {str(task_id): str(status) for task_id, status in rows}

    def wait(self, task_ids: Iterable[str], *, timeout: float | None = None) -> dict[str, str]:
        """Block until every task in `task_ids` has ended; return each one's final status.

        Raises `WaitTimeout` after `timeout` seconds (None: no limit), and `KeyError` for an
        id that names no task. A lost database connection is re-made (every 0.5 s) and the
        statuses read again; it does not end the wait.
        """
        pending = set(task_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Listening only while waiting: a connection that listens but is not read holds back
        # the server's notification queue for everyone (it fills, and then NOTIFY fails).
        try:
            self._listen()
        except psycopg.OperationalError:  # the connection died while idle
            self._reconnect(deadline, pending, {}, timeout)
        try:
            return self._wait(pending, deadline, timeout)
        finally:
            if not self._conn.closed:
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute(f"UNLISTEN {CHANNEL}")

    def _wait(
        self, pending: set[str], deadline: float | None, timeout: float | None
    ) -> dict[str, str]:
        ended: dict[str, str] = {}
        checked: float | None = None  # when the table was last read
        while checked is None or pending - ended.keys():
            now = time.monotonic()
            if checked is not None and deadline is not None and now >= deadline:
                raise WaitTimeout(pending - ended.keys(), ended, timeout or 0.0)
            try:
                if checked is None or now - checked >= self.recheck_s:
                    # First, and whenever a notification may have been lost.
                    ended.update(self._ended(pending - ended.keys()))
                    checked = now
                    continue
                slice_s = checked + self.recheck_s - now
                if deadline is not None:
                    slice_s = min(slice_s, deadline - now)
                for note in self._conn.notifies(timeout=slice_s, stop_after=1):
                    task_id, _, status = note.payload.partition(" ")
                    if task_id in pending:
                        ended[task_id] = status
            except psycopg.OperationalError as exc:
                log.warning("waiting for tasks: database connection lost (%s); reconnecting", exc)
                self._reconnect(deadline, pending - ended.keys(), ended, timeout)
                checked = None  # notifications sent while disconnected are gone: read again
        return ended

    def _listen(self) -> None:
        self._conn.execute(f"LISTEN {CHANNEL}")
        # Drop what an earlier wait left unread: a task that ended then may have been retried
        # since. The statuses are read after this, so nothing current is lost.
        for _ in self._conn.notifies(timeout=0):
            pass

    def _reconnect(
        self,
        deadline: float | None,
        pending: set[str],
        ended: dict[str, str],
        timeout: float | None,
    ) -> None:
        self._conn.close()
        while True:
            try:
                self._conn = self._connect()
                self._listen()
                return
            except psycopg.OperationalError as exc:
                if deadline is not None and time.monotonic() + RECONNECT_S >= deadline:
                    raise WaitTimeout(pending, ended, timeout or 0.0) from exc
                time.sleep(RECONNECT_S)

    def _ended(self, task_ids: set[str]) -> dict[str, str]:
        found = self.statuses(task_ids)
        missing = task_ids - found.keys()
        if missing:
            raise KeyError(f"no such task: {', '.join(sorted(missing))}")
        return {task_id: status for task_id, status in found.items() if status in ENDED}
