"""Marking entities for (re-)embedding, in the graph write's own transaction, and queueing the
embedding work after it commits. Here, in the graph package, because every node writer (the
`Writer`, the import, the agent) must do it; the embedding itself is `aia_engine.search`'s."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, event, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_MARK = text(
    """
    INSERT INTO kg_embeddings AS e (client_id, node_id, status, requested, updated_at)
    SELECT client_id, node_id, 'pending', version, now() FROM kg_nodes
     WHERE client_id = :client AND version = :version
    ON CONFLICT (client_id, node_id) DO UPDATE
       SET status = 'pending', requested = excluded.requested, attempts = 0, error = NULL,
           updated_at = now()
    """
)

Notifier = Callable[[Sequence[str]], None]
_notifier: Notifier | None = None


def set_notifier(notifier: Notifier | None) -> None:
    """Who queues embedding tasks in this process (by client id), after a graph write commits.
    None: nobody (beat's sweep still finds the pending entities)."""
    global _notifier
    _notifier = notifier


def notify(client_ids: Sequence[str]) -> None:
    """Queue embedding work for `client_ids` now; a failure is logged, never raised (the write
    has committed, and the sweep will find its entities)."""
    if _notifier is None or not client_ids:
        return
    try:
        _notifier(list(client_ids))
    except Exception as exc:  # the broker is down: the sweep queues it later
        log.warning("could not queue embedding work for %s: %s", list(client_ids), exc)


def mark_pending(session: Session, client_id: str, version: int) -> int:
    """In the write's transaction: every node stamped with `version` waits for its vector.
    The number of nodes marked."""
    result = cast(
        CursorResult[Any], session.execute(_MARK, {"client": client_id, "version": version})
    )
    return int(result.rowcount or 0)


def mark_pending_and_notify(session: Session, client_id: str, version: int) -> None:
    """`mark_pending`, and queue the client's embedding task once this transaction commits."""
    if mark_pending(session, client_id, version) and _notifier is not None:
        event.listen(session, "after_commit", lambda _s: notify([client_id]), once=True)


_ENTITY = text(
    "SELECT status, model, updated_at FROM kg_embeddings "
    "WHERE client_id = :client AND node_id = :node_id"
)


def entity_status(session: Session, client_id: str, node_id: str) -> dict[str, Any] | None:
    """`status`, `model` (of the stored vector; null before the first) and `updated_at` of one
    entity's embedding; None when it has no row (a node written before indexing existed, until
    the migration's backfill reached it)."""
    row = session.execute(_ENTITY, {"client": client_id, "node_id": node_id}).first()
    if row is None:
        return None
    return {"status": row.status, "model": row.model, "updated_at": row.updated_at}
