"""Removing deleted datasets' rows in the background: a delete only hides the dataset (one
quick UPDATE, aia_engine/datasets/store.py); `BackgroundPurge` then deletes its rows in chunks
on a thread of its own, so no request waits for millions of rows to go."""

from __future__ import annotations

import logging
import threading

from aia_engine.datasets.store import purge_deleted
from aia_engine.db.session import Sessions

log = logging.getLogger(__name__)


class BackgroundPurge:
    """`kick()` after a delete (and once at start, for what a stopped process left): one
    thread purges every deleted dataset, again while kicks keep coming, then ends."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._lock = threading.Lock()
        self._again = False
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._again = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aia-dataset-purge", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
            try:
                purge_deleted(self.sessions)
            except Exception:
                log.warning("could not purge deleted datasets' rows; will retry", exc_info=True)
                with self._lock:
                    self._thread = None
                return

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
