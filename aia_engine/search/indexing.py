"""Indexing the knowledge graph's entities for semantic search: which entities wait for a
vector, and the embedding step a worker runs (the `aia.embed_entities` task, queue
`aia.embeddings`).

* **Marked in the write's transaction.** Every graph write that creates or changes nodes (the
  API's `Writer`, an import chunk, an agent's stage) makes each node it stamped `pending` in
  `kg_embeddings` in the same transaction (`mark_pending`), so a committed write can never be
  forgotten. After the commit, the process's notifier (set by whoever can reach the broker:
  the API, the workers, `aia-engine kg import`) queues one embedding task for the client; a lost
  message costs only time: beat's sweep (`stale_clients`) queues any client whose entities stay
  pending past AIA_SEARCH_EMBED_STALE_S and no worker holds.
* **Embedded in batches.** `embed_step` takes up to AIA_SEARCH_EMBED_BATCH pending rows of one
  client (`FOR UPDATE SKIP LOCKED`: concurrent tasks take disjoint batches; a killed worker's
  rows are released by its dropped connection), computes each entity's text and its hash, and
  encodes only the texts whose hash (or model) differs from the stored vector's; the others go
  back to `embedded` as they were. Vectors are written as `real[]`, plus the `vector` column
  where pgvector exists, stamped with the client's next embedding version (`seq`), which an
  in-process vector cache catches up from. Writing the same vector twice changes nothing, so a
  redelivered task is harmless.
* **A model change** (the encoder's name differs from a row's `model`) makes those rows due
  again: the sweep and the tasks pick them up like pending ones, in the background, while
  search keeps answering from the vectors of the current model.
* A text the encoder refuses is retried per entity; after AIA_SEARCH_EMBED_MAX_ATTEMPTS its
  status is `failed` (with the error) until the entity is written again; its previous vector,
  if any, stays (so does its model: a failed entity is not re-indexed on a model change).

The entity's text and hash come from `aia_engine.search.texts`, the vectors from
`aia_engine.search.encoder.get_encoder()`; the model name stored with a vector is
`texts.vector_model` (the encoder's, plus a digest of non-default text settings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.db.session import Sessions
from aia_engine.errors import EngineError
from aia_engine.search.store import DIMENSIONS
from aia_engine.search.texts import entity_text, text_hash, vector_model
from aia_engine.settings import Settings

log = logging.getLogger(__name__)

PENDING, EMBEDDED, FAILED = "pending", "embedded", "failed"
STATUSES = (PENDING, EMBEDDED, FAILED)
QUEUE = "aia.embeddings"
ERROR_CHARS = 500


class Encoder(Protocol):
    """What `aia_engine.search.encoder.get_encoder()` answers."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


TextOf = Callable[[str, dict[str, Any]], str]
"""An entity's text from its type and properties."""
HashOf = Callable[[str], str]


def encoder_for(settings: Settings) -> Encoder:
    """The encoder of this process (the shipped model, loaded on first use)."""
    from aia_engine.search.encoder import get_encoder  # onnxruntime: only where vectors are made

    shipped: Encoder = get_encoder()
    return shipped


def texts_for(settings: Settings) -> tuple[TextOf, HashOf]:
    """The entity text and text hash functions (aia_engine.search.texts) under `settings`."""

    def text_of(node_type: str, properties: dict[str, Any]) -> str:
        return entity_text(node_type, properties, settings)

    return text_of, text_hash


# -- the embedding step ----------------------------------------------------------------------

_CLAIM = text(
    """
    SELECT e.node_id, e.text_hash, e.model, e.attempts, (e.embedding IS NOT NULL) AS has_vector,
           n.type, n.properties
      FROM kg_embeddings e
      JOIN kg_nodes n ON n.client_id = e.client_id AND n.node_id = e.node_id
     WHERE e.client_id = :client
       AND (e.status = 'pending' OR (e.status = 'embedded' AND e.model IS DISTINCT FROM :model))
     ORDER BY e.updated_at
     LIMIT :limit
       FOR UPDATE OF e SKIP LOCKED
    """
)
_NEXT_SEQ = text(
    """
    INSERT INTO kg_embedding_state AS s (client_id, version) VALUES (:client, 1)
    ON CONFLICT (client_id) DO UPDATE SET version = s.version + 1
    RETURNING version
    """
)
_STORE = """
UPDATE kg_embeddings e
   SET embedding = CAST(u.v AS real[]), {vec}model = :model, text_hash = u.h,
       status = 'embedded', error = NULL, attempts = 0, seq = :seq, updated_at = now()
  FROM unnest(CAST(:ids AS text[]), CAST(:hashes AS text[]), CAST(:vectors AS text[]))
       AS u(node_id, h, v)
 WHERE e.client_id = :client AND e.node_id = u.node_id
"""
_STORE_SQL = {
    False: text(_STORE.format(vec="")),
    True: text(_STORE.format(vec="vec = CAST(CAST(u.v AS real[]) AS vector), ")),
}
_UNCHANGED = text(
    "UPDATE kg_embeddings SET status = 'embedded', attempts = 0, error = NULL, updated_at = now() "
    "WHERE client_id = :client AND node_id = ANY(CAST(:ids AS text[]))"
)
_FAILED = text(
    """
    UPDATE kg_embeddings e
       SET attempts = e.attempts + 1, error = u.error, updated_at = now(),
           status = CASE WHEN e.attempts + 1 >= :max_attempts THEN 'failed' ELSE 'pending' END
      FROM unnest(CAST(:ids AS text[]), CAST(:errors AS text[])) AS u(node_id, error)
     WHERE e.client_id = :client AND e.node_id = u.node_id
    """
)
_REMAINING = text(
    "SELECT EXISTS (SELECT 1 FROM kg_embeddings WHERE client_id = :client "
    "AND (status = 'pending' OR (status = 'embedded' AND model IS DISTINCT FROM :model)))"
)
_HOLD = text(
    """
    INSERT INTO kg_embedding_state AS s (client_id, version, busy_until)
    VALUES (:client, 0, now() + make_interval(secs => :hold_s))
    ON CONFLICT (client_id) DO UPDATE SET busy_until = excluded.busy_until
    """
)
_RELEASE = text("UPDATE kg_embedding_state SET busy_until = NULL WHERE client_id = :client")


@dataclass
class Step:
    """What one embedding step did."""

    encoded: int = 0
    """Entities whose text was encoded and stored."""
    unchanged: int = 0
    """Entities whose text (and model) matched their stored vector: nothing encoded."""
    failed: int = 0
    """Entities whose encoding failed this time (pending again, or failed for good)."""

    @property
    def taken(self) -> int:
        return self.encoded + self.unchanged + self.failed


def vector_literal(row: np.ndarray) -> str:
    """A float32 vector as a PostgreSQL array literal (each float exact: repr round-trips)."""
    return "{" + ",".join(map(repr, row.tolist())) + "}"


def _encode(encoder: Encoder, texts: list[str]) -> np.ndarray:
    vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
    if vectors.shape != (len(texts), DIMENSIONS) or not np.isfinite(vectors).all():
        raise ValueError(
            f"the encoder answered {vectors.shape} (or non-finite values) for {len(texts)} "
            f"texts; {DIMENSIONS} finite floats per text are needed"
        )
    return vectors


def _encode_each(
    encoder: Encoder, texts: list[str]
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """Encode all at once; when that fails, one by one, to keep the good ones. Answers the
    positions encoded, their vectors, and (position, error) of the rest."""
    try:
        return list(range(len(texts))), _encode(encoder, texts), []
    except (EngineError, MemoryError):
        raise  # the model is missing or broken, the process short of memory: not the texts'
    except Exception as exc:
        if len(texts) == 1:
            return [], np.empty((0, DIMENSIONS), np.float32), [(0, _error_text(exc))]
    done: list[int] = []
    vectors: list[np.ndarray] = []
    errors: list[tuple[int, str]] = []
    for i, one in enumerate(texts):
        try:
            vectors.append(_encode(encoder, [one])[0])
            done.append(i)
        except (EngineError, MemoryError):
            raise
        except Exception as exc:
            errors.append((i, _error_text(exc)))
    if not done:
        # Every text failed on its own: the encoder is at fault, not the texts. Fail the task
        # without counting attempts; the rows stay pending and the sweep queues them again.
        raise RuntimeError(f"no text of a batch of {len(texts)} could be encoded: {errors[0][1]}")
    stacked = np.stack(vectors) if vectors else np.empty((0, DIMENSIONS), np.float32)
    return done, stacked, errors


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def embed_step(
    session: Session,
    client_id: str,
    encoder: Encoder,
    text_of: TextOf,
    hash_of: HashOf,
    *,
    batch: int = 64,
    max_attempts: int = 3,
    model: str | None = None,
) -> Step:
    """One batch of the client's due entities, in the caller's transaction (commit it): claim,
    compare hashes, encode what changed, store. See the module's docstring."""
    from aia_engine.search.store import has_vector_column

    model = model or encoder.name
    rows = session.execute(_CLAIM, {"client": client_id, "model": model, "limit": batch}).all()
    step = Step()
    if not rows:
        return step
    same: list[str] = []
    todo: list[tuple[str, str, str]] = []  # node_id, text, hash
    for row in rows:
        entity_text = text_of(row.type, row.properties)
        digest = hash_of(entity_text)
        if row.has_vector and row.model == model and row.text_hash == digest:
            same.append(row.node_id)
        else:
            todo.append((row.node_id, entity_text, digest))
    params: dict[str, Any] = {"client": client_id, "model": model}
    if same:
        session.execute(_UNCHANGED, {**params, "ids": same})
        step.unchanged = len(same)
    if todo:
        done, vectors, errors = _encode_each(encoder, [t for _, t, _ in todo])
        if done:
            seq = int(session.execute(_NEXT_SEQ, params).scalar_one())
            session.execute(
                _STORE_SQL[has_vector_column(session)],
                {
                    **params,
                    "seq": seq,
                    "ids": [todo[i][0] for i in done],
                    "hashes": [todo[i][2] for i in done],
                    "vectors": [vector_literal(v) for v in vectors],
                },
            )
            step.encoded = len(done)
        if errors:
            session.execute(
                _FAILED,
                {
                    **params,
                    "max_attempts": max_attempts,
                    "ids": [todo[i][0] for i, _ in errors],
                    "errors": [e for _, e in errors],
                },
            )
            step.failed = len(errors)
            log.warning(
                "embedding failed for %d entities of %s: %s", len(errors), client_id, errors[0][1]
            )
    return step


def embed_client(
    sessions: Sessions,
    client_id: str,
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    texts: tuple[TextOf, HashOf] | None = None,
    budget_s: float | None = None,
) -> tuple[Step, bool]:
    """Embedding steps for one client, one transaction each, for about `budget_s` (the
    task's share of a worker). Answers the totals and whether due entities remain."""
    encoder = encoder or encoder_for(settings)
    text_of, hash_of = texts or texts_for(settings)
    model = vector_model(encoder.name, settings)
    budget = settings.search_embed_task_s if budget_s is None else budget_s
    began = time.monotonic()
    total = Step()
    # Renewed before each batch: the sweep leaves the client alone while this task works, and
    # takes it back AIA_SEARCH_EMBED_STALE_S after a killed worker's last batch began.
    hold = {"client": client_id, "hold_s": settings.search_embed_stale_s}
    while True:
        with sessions.begin() as session:
            session.execute(_HOLD, hold)
        with sessions.begin() as session:
            step = embed_step(
                session,
                client_id,
                encoder,
                text_of,
                hash_of,
                batch=settings.search_embed_batch,
                max_attempts=settings.search_embed_max_attempts,
                model=model,
            )
        total.encoded += step.encoded
        total.unchanged += step.unchanged
        total.failed += step.failed
        if step.taken < settings.search_embed_batch or time.monotonic() - began >= budget:
            break
    with sessions.begin() as session:
        session.execute(_RELEASE, {"client": client_id})
        remaining = bool(
            session.execute(_REMAINING, {"client": client_id, "model": model}).scalar()
        )
    return total, remaining


# -- the sweep and the figures ---------------------------------------------------------------

_STALE = text(
    """
    SELECT due.client_id FROM (
        SELECT DISTINCT client_id FROM kg_embeddings
         WHERE status = 'pending' AND updated_at < now() - make_interval(secs => :stale_s)
        UNION
        SELECT DISTINCT client_id FROM kg_embeddings
         WHERE status = 'embedded' AND (model < :model OR model > :model)
    ) due
    LEFT JOIN kg_embedding_state s ON s.client_id = due.client_id
     WHERE s.busy_until IS NULL OR s.busy_until < now()
     ORDER BY due.client_id
    """
)


def stale_clients(sessions: Sessions, settings: Settings, model: str) -> list[str]:
    """Clients with entities pending for longer than AIA_SEARCH_EMBED_STALE_S, or vectors of
    another model than `model`, that no running task holds (beat's sweep queues them)."""
    with sessions.begin() as session:
        rows = session.execute(
            _STALE, {"stale_s": settings.search_embed_stale_s, "model": model}
        ).all()
    return [row.client_id for row in rows]


_COUNTS = text(
    "SELECT status, count(*) AS n FROM kg_embeddings WHERE client_id = :client GROUP BY status"
)
_ALL_COUNTS = text("SELECT status, count(*) AS n FROM kg_embeddings GROUP BY status")


def status_counts(session: Session, client_id: str | None = None) -> dict[str, int]:
    """Entities by embedding status: the client's, or every client's (None)."""
    if client_id is None:
        rows = session.execute(_ALL_COUNTS).all()
    else:
        rows = session.execute(_COUNTS, {"client": client_id}).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({row.status: int(row.n) for row in rows})
    return counts
