"""The event pump: publishes the `task_events` log, in commit order, exactly once.

Task events and knowledge-graph changes share the log: a graph change has no task and names
its owner itself (`task_events.client_id`), so the batch reads the owner as
`COALESCE(task's client, event's client)`; both are published on the owner's channel and fan
out to the webhooks subscribed to their type.

Event ids come from a sequence, and transactions commit out of id order, so "everything after
id N" is not a safe cursor. Instead the pump gives each committed, not yet published event its
place in the stream (`pos`, from a second sequence) and, in the same transaction, creates its
webhook deliveries. One task's events are written under its row lock, so their ids follow their
`seq`; taking unpublished events in id order therefore keeps each task's order, and an event
that committed late is simply taken by the next batch. Only one pump works at a time (a
PostgreSQL advisory lock held by its connection), so `pos` grows in publication order and a
stream can resume after any `pos` (SSE `Last-Event-ID`).

After commit the batch goes to Redis pub/sub (live streams; a stream that misses a message
catches up from PostgreSQL) and its deliveries to the delivery queue (the sweeper re-sends any
that did not get there).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.engine import Connection

from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.events.body import WEBHOOK_EVENTS, event_from_row
from aia_engine.events.fanout import Outgoing, create_deliveries

log = logging.getLogger(__name__)
LOCK_KEY = 0x41494145  # "AIAE": the pump's advisory lock
SendDeliveries = Callable[[Sequence[str]], None]

_BATCH = text(
    """
    SELECT e.id, e.task_id, e.seq, e.type, e.stage, e.payload, e.created_at,
           e.progress AS event_progress, COALESCE(t.client_id, e.client_id) AS client_id,
           t.progress, t.results, t.error
      FROM task_events e LEFT JOIN tasks t ON t.id = e.task_id
     WHERE e.pos IS NULL
     ORDER BY e.id
     LIMIT :n
    """
)
_ASSIGN = text(
    """
    UPDATE task_events e SET pos = v.pos
      FROM (SELECT unnest(CAST(:ids AS bigint[])) AS id,
                   unnest(CAST(:poses AS bigint[])) AS pos) v
     WHERE e.id = v.id
    """
)
_POSITIONS = text("SELECT nextval('task_events_pos_seq') FROM generate_series(1, :n)")


def channel(client_id: str) -> str:
    """The Redis pub/sub channel of one client's events."""
    return f"aia:events:{client_id}"


CHANNEL_PATTERN = "aia:events:*"
RESYNC_CHANNEL = "aia:events-resync"
"""A message here tells every stream to catch up from PostgreSQL (some publishes were lost)."""


@dataclass
class PumpResult:
    events: int = 0
    deliveries: list[str] = field(default_factory=list)


class EventPump:
    def __init__(
        self,
        sessions: Sessions,
        redis_client: redis.Redis,
        send_deliveries: SendDeliveries,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.02,
    ) -> None:
        self.sessions = sessions
        self.redis = redis_client
        self.send_deliveries = send_deliveries
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._lock_conn: Connection | None = None
        self._checked = 0.0
        self._lost = False

    # -- one batch -------------------------------------------------------------------------
    def pump_once(self) -> PumpResult:
        """Publish up to one batch. The caller must hold leadership (`acquire`)."""
        now = utcnow()
        with self.sessions.begin() as session:
            rows = session.execute(_BATCH, {"n": self.batch_size}).all()
            if not rows:
                return PumpResult()
            positions = sorted(
                int(p) for p in session.execute(_POSITIONS, {"n": len(rows)}).scalars()
            )
            session.execute(_ASSIGN, {"ids": [r.id for r in rows], "poses": positions})
            published: list[tuple[str, dict[str, Any]]] = []
            outgoing: list[Outgoing] = []
            for row, pos in zip(rows, positions, strict=True):
                body = event_from_row(row, pos)
                published.append((row.client_id, body))
                if row.type in WEBHOOK_EVENTS:
                    # A graph change an agent wrote names its task in the delivery log too.
                    task_id = row.task_id or body["data"].get("task_id")
                    outgoing.append(
                        Outgoing(row.client_id, row.type, body["event_id"], task_id, body)
                    )
            deliveries = create_deliveries(session, outgoing, now=now)
        self._publish(published)
        if deliveries:
            try:
                self.send_deliveries(deliveries)
            except Exception:  # the sweeper sends them later
                log.warning("could not queue %d webhook deliveries", len(deliveries), exc_info=True)
        return PumpResult(len(rows), deliveries)

    def _publish(self, published: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            if self._lost:
                pipe.publish(RESYNC_CHANNEL, "1")  # before anything newer
            for client_id, body in published:
                pipe.publish(channel(client_id), json.dumps(body, separators=(",", ":")))
            pipe.execute()
            self._lost = False
        except redis.RedisError:
            # Live streams miss these; they catch up from PostgreSQL on the resync message
            # sent with the next publish that succeeds (or at their next heartbeat).
            self._lost = True
            log.warning("could not publish %d events to Redis", len(published), exc_info=True)

    # -- leadership ------------------------------------------------------------------------
    def acquire(self) -> bool:
        """Become the one working pump (an advisory lock that lives with a connection)."""
        if self._lock_conn is not None:
            if time.monotonic() - self._checked < 1.0:
                return True
            try:  # the lock lives as long as its connection: check that it does
                self._lock_conn.execute(text("SELECT 1"))
                self._checked = time.monotonic()
                return True
            except Exception:
                self.release()
        conn = self.sessions.kw["bind"].connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}
            ).scalar_one()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._lock_conn = conn
        self._checked = time.monotonic()
        log.info("event pump: this process publishes events")
        return True

    def release(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()
            except Exception:
                conn.invalidate()
            finally:
                conn.close()

    def run(self, stop: threading.Event) -> None:
        """Pump until `stop` is set; stand by while another pump holds the lock."""
        try:
            while not stop.is_set():
                try:
                    if not self.acquire():
                        stop.wait(1.0)
                        continue
                    result = self.pump_once()
                except Exception:
                    log.exception("event pump failed; retrying")
                    self.release()
                    stop.wait(1.0)
                    continue
                if result.events < self.batch_size:
                    stop.wait(self.poll_interval_s)
        finally:
            self.release()

    def start(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="aia-event-pump", daemon=True)
        thread.start()
        return thread, stop
