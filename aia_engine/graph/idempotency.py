"""Idempotency-Key for knowledge-graph writes: the first answer is kept (per client and key) and
a repeat of the same request gets it back without writing; the key reused for another request
is a conflict, as for tasks.

Checked and stored inside the write's transaction, after `versions.begin_write` took the
graph's lock, so two concurrent requests with one key cannot both write."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.errors import Conflict

_READ = text(
    "SELECT operation, request_hash, answer FROM kg_idempotency "
    "WHERE client_id = :client AND key = :key "
    "AND created_at >= now() - make_interval(secs => :seconds)"
)
_STORE = text(
    """
    INSERT INTO kg_idempotency (client_id, key, operation, request_hash, answer)
    VALUES (:client, :key, :operation, :hash, CAST(:answer AS jsonb))
    ON CONFLICT (client_id, key) DO NOTHING
    """
)
_PRUNE = text(
    "DELETE FROM kg_idempotency WHERE client_id = :client "
    "AND created_at < now() - make_interval(secs => :seconds)"
)


def request_hash(operation: str, body: Any) -> str:
    """A stable digest of a request body (key order does not matter)."""
    canonical = json.dumps(
        [operation, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Idempotency:
    """A write's Idempotency-Key: `operation` names the endpoint's write (a key used on another
    endpoint is another request), `digest` the body (`request_hash`)."""

    key: str
    operation: str
    digest: str
    keep_hours: float = 24.0

    def stored(self, session: Session, client_id: str) -> dict[str, Any] | None:
        """The answer the key got, when this is a repeat of the same request; Conflict when the
        key was used for a different one; None the first time (or once the key expired)."""
        row = session.execute(
            _READ, {"client": client_id, "key": self.key, "seconds": self.keep_hours * 3600}
        ).first()
        if row is None:
            return None
        if row.operation != self.operation or row.request_hash != self.digest:
            raise Conflict(
                f"idempotency key {self.key!r} was used for a different request",
                field="Idempotency-Key",
                provided_value=self.key,
            )
        answer: dict[str, Any] = row.answer
        return answer

    def remember(self, session: Session, client_id: str, answer: dict[str, Any]) -> None:
        """Keep the answer (and forget the client's keys older than `keep_hours`)."""
        session.execute(_PRUNE, {"client": client_id, "seconds": self.keep_hours * 3600})
        session.execute(
            _STORE,
            {
                "client": client_id,
                "key": self.key,
                "operation": self.operation,
                "hash": self.digest,
                "answer": json.dumps(answer, ensure_ascii=False),
            },
        )
