"""System checks behind `system.alert`: no live worker for a while, a queue backlog.

Runs in the beat process (a beat-scheduled task could not notice that no worker is alive).
Each condition raises one alert per episode: the de-duplication key carries the time the
episode began, so it alerts again only after the condition cleared and came back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.ops.alerts import raise_alert
from aia_engine.settings import Settings

log = logging.getLogger("aia_engine.monitor")  # the name operators filter on
SendDeliveries = Callable[[Sequence[str]], None]


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class SystemMonitor:
    def __init__(
        self,
        sessions: Sessions,
        settings: Settings,
        *,
        count_workers: Callable[[], int],
        queue_depths: Callable[[], dict[str, int]],
        send_deliveries: SendDeliveries,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions, self.settings = sessions, settings
        self.count_workers, self.queue_depths = count_workers, queue_depths
        self.send_deliveries, self.clock = send_deliveries, clock
        self.started = clock()
        self.last_alive: float | None = None
        self.backlog_since: dict[str, float] = {}

    def check(self) -> list[str]:
        """Run every check once; returns the alert types raised now."""
        now = self.clock()
        raised: list[str] = []
        if self.count_workers() > 0:
            self.last_alive = now
        else:
            since = self.last_alive or self.started
            if now - since >= self.settings.alert_no_worker_s:
                silent = round(now - since)
                if self._alert(
                    f"no_workers:{_stamp(since)}",
                    "no_workers",
                    "critical",
                    f"no worker has answered for {silent}s; stages are not running",
                    {"since": _stamp(since), "seconds": silent},
                ):
                    raised.append("no_workers")
        limit = self.settings.alert_queue_backlog
        for queue, depth in self.queue_depths().items():
            if depth > limit:
                since = self.backlog_since.setdefault(queue, now)
                if self._alert(
                    f"queue_backlog:{queue}:{_stamp(since)}",
                    "queue_backlog",
                    "warning",
                    f"queue {queue} holds {depth} messages (threshold {limit})",
                    {"queue": queue, "depth": depth, "threshold": limit},
                ):
                    raised.append("queue_backlog")
            elif depth <= limit // 2:
                self.backlog_since.pop(queue, None)
        return raised

    def _alert(
        self, key: str, alert_type: str, severity: str, message: str, details: dict[str, object]
    ) -> bool:
        with self.sessions.begin() as session:
            deliveries = raise_alert(
                session,
                dedupe_key=key,
                alert_type=alert_type,
                severity=severity,
                message=message,
                details=dict(details),
                now=utcnow(),
            )
        if deliveries is None:
            return False
        if deliveries:
            self.send_deliveries(deliveries)
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.alert_check_interval_s):
            try:
                self.check()
            except Exception:
                log.exception("system checks failed; trying again next interval")
