"""Nearest entities to a query vector, over one client's stored vectors, on either storage path.

* **pgvector** (the `vec vector(384)` column exists: migration 0019 found the extension): one
  `ORDER BY vec <=> :q LIMIT :limit` query on the HNSW index, `hnsw.ef_search` at least
  AIA_SEARCH_HNSW_EF_SEARCH and twice the limit, and pgvector's iterative scan on, so filters
  that few rows pass still fill the limit. HNSW is approximate; when it answers fewer rows than
  the limit (a small client on a big shared index, a rare type), the query runs again exactly
  (without the index).
* **numpy** (no extension): an exact scan of the client's vectors held in this process
  (`VectorCache`): a float32 matrix per client and model, kept current like the graph cache:
  each search reads the client's embedding version and graph version (one indexed row each);
  when either moved, it reads only the vectors stored since (`seq`) and the nodes deleted
  since (`kg_tombstones`), and reloads when the tombstones it needs were pruned.

Both compute the cosine similarity of the stored vector and the query, and answer the same ids
and scores (within float32 rounding, 1e-4). Tenancy: every statement is `WHERE client_id = :c`
and a client's vectors live in a matrix of its own. Filters: `entity_types` (the node's type is
one of them) and `property_filters` (each named property equals the given JSON scalar), both in
SQL. Vectors of another model than `model` are never compared (a re-index in progress).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.db.direct import in_session

DIMENSIONS = 384
"""The model's vector size (all-MiniLM-L6-v2)."""

Path = Literal["auto", "pgvector", "numpy"]
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Hit:
    node_id: str
    score: float
    """Cosine similarity of the entity's vector and the query (-1..1)."""


_HAS_VEC = text(
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'kg_embeddings'::regclass "
    "AND attname = 'vec' AND NOT attisdropped)"
)
_vec_columns: dict[str, bool] = {}


def _database_key(session: Session) -> str:
    return session.connection().engine.url.render_as_string(hide_password=True)


_ITERATIVE = text(
    "SELECT string_to_array(extversion, '.')::int[] >= ARRAY[0, 8] FROM pg_extension "
    "WHERE extname = 'vector'"
)
_iterative_scans: dict[str, bool] = {}


def has_iterative_scans(session: Session) -> bool:
    """pgvector 0.8 or later (`hnsw.iterative_scan` exists; setting it on an older one fails)."""
    key = _database_key(session)
    found = _iterative_scans.get(key)
    if found is None:
        found = _iterative_scans[key] = bool(session.execute(_ITERATIVE).scalar())
    return found


def has_vector_column(session: Session) -> bool:
    """True where migration 0019 added the pgvector column (asked once per database)."""
    key = _database_key(session)
    found = _vec_columns.get(key)
    if found is None:
        found = _vec_columns[key] = bool(session.execute(_HAS_VEC).scalar())
    return found


def check_filters(property_filters: Mapping[str, Any] | None) -> dict[str, Scalar]:
    """Property equality filters: names to JSON scalars (a list or object is refused)."""
    out: dict[str, Scalar] = {}
    for key, value in (property_filters or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError("a property filter's name must be a non-empty string")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"property filter {key!r} must be a string, number, boolean or null")
        out[key] = value
    return out


def _normalised(query_vec: Sequence[float] | np.ndarray) -> np.ndarray:
    q = np.asarray(query_vec, dtype=np.float32).reshape(-1)
    if q.shape != (DIMENSIONS,) or not np.isfinite(q).all():
        raise ValueError(f"the query vector must have {DIMENSIONS} finite floats")
    norm = float(np.linalg.norm(q))
    if norm == 0.0:
        raise ValueError("the query vector is all zeros")
    return q / norm


def _filter_sql(
    entity_types: Sequence[str] | None, filters: dict[str, Scalar], params: dict[str, Any]
) -> str:
    where = ""
    if entity_types is not None:
        params["types"] = list(entity_types)
        where += " AND n.type = ANY(CAST(:types AS text[]))"
    if filters:
        params["props"] = json.dumps(filters, allow_nan=False)
        where += " AND n.properties @> CAST(:props AS jsonb)"
    return where


def nearest(
    session: Session,
    client_id: str,
    query_vec: Sequence[float] | np.ndarray,
    *,
    limit: int,
    threshold: float,
    entity_types: Sequence[str] | None = None,
    property_filters: Mapping[str, Any] | None = None,
    model: str | None = None,
    path: Path = "auto",
    ef_search: int = 100,
) -> list[Hit]:
    """The client's `limit` entities most similar to `query_vec` with a cosine similarity of at
    least `threshold`, best first. `model`: compare only vectors of this encoder (pass the
    encoder's name; None compares every stored vector). `path`: `auto` uses pgvector where its
    column exists, numpy elsewhere; `pgvector` / `numpy` force one (tests, benchmarks).
    Raises ValueError for a malformed vector or filter."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    q = _normalised(query_vec)
    filters = check_filters(property_filters)
    use_pg = has_vector_column(session) if path == "auto" else path == "pgvector"
    if use_pg:
        hits = _pgvector(
            session, client_id, q, limit, entity_types, filters, model, max(ef_search, 2 * limit)
        )
    else:
        hits = default_cache().nearest(session, client_id, q, limit, entity_types, filters, model)
    return [h for h in hits if h.score >= threshold]


_PG_NEAREST = """
SELECT e.node_id, 1 - (e.vec <=> CAST(:q AS vector)) AS score
  FROM kg_embeddings e{join}
 WHERE e.client_id = :client AND e.vec IS NOT NULL{model}{where}
 ORDER BY e.vec <=> CAST(:q AS vector)
 LIMIT :limit
"""
_SET = text("SELECT set_config(:name, :value, true)")


def _pgvector(
    session: Session,
    client_id: str,
    q: np.ndarray,
    limit: int,
    entity_types: Sequence[str] | None,
    filters: dict[str, Scalar],
    model: str | None,
    ef_search: int,
) -> list[Hit]:
    params: dict[str, Any] = {
        "client": client_id,
        "q": "[" + ",".join(map(repr, q.tolist())) + "]",
        "limit": limit,
    }
    where = _filter_sql(entity_types, filters, params)
    join = (
        " JOIN kg_nodes n ON n.client_id = e.client_id AND n.node_id = e.node_id" if where else ""
    )
    if model is not None:
        params["model"] = model
    sql = text(
        _PG_NEAREST.format(
            join=join, where=where, model=" AND e.model = :model" if model is not None else ""
        )
    )
    session.execute(_SET, {"name": "hnsw.ef_search", "value": str(min(ef_search, 1000))})
    if has_iterative_scans(session):
        session.execute(_SET, {"name": "hnsw.iterative_scan", "value": "strict_order"})
    rows = session.execute(sql, params).all()
    if len(rows) < limit:  # approximate search found too few: ask exactly (no index scan)
        session.execute(_SET, {"name": "enable_indexscan", "value": "off"})
        try:
            rows = session.execute(sql, params).all()
        finally:
            session.execute(_SET, {"name": "enable_indexscan", "value": "on"})
    return [Hit(row.node_id, float(row.score)) for row in rows]


# -- the numpy path: an exact scan over vectors cached in this process ------------------------

_VERSIONS = text(
    """
    SELECT coalesce((SELECT version FROM kg_embedding_state WHERE client_id = :client), 0) AS seq,
           coalesce((SELECT version FROM kg_graphs WHERE client_id = :client), 0) AS graph,
           coalesce((SELECT tombstones_from FROM kg_graphs WHERE client_id = :client), 0)
             AS tombstones_from
    """
)
_LOAD = """
SELECT node_id, array_send(embedding) AS v, model FROM kg_embeddings
 WHERE client_id = %(client)s AND embedding IS NOT NULL AND seq <= %(seq)s{since}
"""
_DELETED = text(
    "SELECT item_id FROM kg_tombstones WHERE client_id = :client AND kind = 'node' "
    "AND version > :since AND version <= :until"
)
_CANDIDATES = "SELECT node_id FROM kg_nodes n WHERE n.client_id = :client{where}"
_HEADER = 20  # array_send of a one-dimensional real[]: ndim, flags, type, length, lower bound
_ELEMENT = np.dtype([("len", ">i4"), ("value", ">f4")])


def decode_array(data: bytes) -> np.ndarray:
    """A one-dimensional real[] in PostgreSQL's binary format (`array_send`) as float32."""
    items = np.frombuffer(data, dtype=_ELEMENT, offset=_HEADER)
    return items["value"].astype(np.float32)


@dataclass
class ClientVectors:
    """One client's vectors of one model: rows of a matrix, unit length; freed rows are dead."""

    model: str | None
    seq: int = 0
    graph: int = 0
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, DIMENSIONS), np.float32))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    ids: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.rows)

    def remove(self, node_id: str) -> None:
        row = self.rows.pop(node_id, None)
        if row is not None:
            self.alive[row] = False
            self.free.append(row)

    def put(self, node_id: str, vector: np.ndarray) -> None:
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            self.remove(node_id)
            return
        row = self.rows.get(node_id)
        if row is None:
            if self.free:
                row = self.free.pop()
                self.ids[row] = node_id
            else:
                row = len(self.ids)
                self.ids.append(node_id)
                if row >= len(self.matrix):
                    grown = max(64, 2 * len(self.matrix))
                    matrix = np.zeros((grown, DIMENSIONS), np.float32)
                    matrix[: len(self.matrix)] = self.matrix
                    alive = np.zeros(grown, bool)
                    alive[: len(self.alive)] = self.alive
                    self.matrix, self.alive = matrix, alive
            self.rows[node_id] = row
        self.matrix[row] = vector / norm
        self.alive[row] = True

    def top(self, q: np.ndarray, limit: int, allowed: set[str] | None) -> list[Hit]:
        used = len(self.ids)
        if not used:
            return []
        scores = self.matrix[:used] @ q
        mask = self.alive[:used].copy()
        if allowed is not None:
            keep = np.zeros(used, bool)
            for node_id in allowed:
                row = self.rows.get(node_id)
                if row is not None:
                    keep[row] = True
            mask &= keep
        candidates = np.flatnonzero(mask)
        if not len(candidates):
            return []
        if len(candidates) > limit:  # partial selection first: O(n) instead of a sort
            candidates = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        picked = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [Hit(self.ids[i], float(scores[i])) for i in picked]


class VectorCache:
    """Per-process vectors of the clients searched here, least recently used first out past
    `max_vectors` (the client being searched stays, whatever its size)."""

    def __init__(self, max_vectors: int = 2_000_000) -> None:
        self.max_vectors = max_vectors
        self._clients: OrderedDict[tuple[str, str, str | None], ClientVectors] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, key: tuple[str, str, str | None]) -> ClientVectors:
        with self._lock:
            entry = self._clients.get(key)
            if entry is None:
                entry = self._clients[key] = ClientVectors(model=key[2])
            self._clients.move_to_end(key)
            total = sum(c.size for c in self._clients.values())
            while total > self.max_vectors and len(self._clients) > 1:
                first = next(iter(self._clients))
                if first == key:
                    break
                total -= self._clients.pop(first).size
            return entry

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()

    def nearest(
        self,
        session: Session,
        client_id: str,
        q: np.ndarray,
        limit: int,
        entity_types: Sequence[str] | None,
        filters: dict[str, Scalar],
        model: str | None,
    ) -> list[Hit]:
        entry = self._entry((_database_key(session), client_id, model))
        with entry.lock:
            self._catch_up(session, client_id, entry)
            allowed = None
            params: dict[str, Any] = {"client": client_id}
            where = _filter_sql(entity_types, filters, params)
            if where:
                found = session.execute(text(_CANDIDATES.format(where=where)), params)
                allowed = {row.node_id for row in found}
            return entry.top(q, limit, allowed)

    def _catch_up(self, session: Session, client_id: str, entry: ClientVectors) -> None:
        state = session.execute(_VERSIONS, {"client": client_id}).one()
        seq, graph = int(state.seq), int(state.graph)
        if (seq, graph) == (entry.seq, entry.graph):
            return
        reload = entry.graph < int(state.tombstones_from) or entry.seq == 0
        if reload:
            fresh = ClientVectors(model=entry.model)
            entry.matrix, entry.alive, entry.ids = fresh.matrix, fresh.alive, fresh.ids
            entry.rows, entry.free = fresh.rows, fresh.free
            since = ""
        else:
            deleted = session.execute(
                _DELETED, {"client": client_id, "since": entry.graph, "until": graph}
            )
            for row in deleted:
                entry.remove(row.item_id)
            since = " AND seq > %(since)s"
        conn = in_session(session)
        with conn.cursor(binary=True) as cur:
            cur.execute(
                _LOAD.format(since=since), {"client": client_id, "seq": seq, "since": entry.seq}
            )
            for node_id, data, model in cur:
                if entry.model is not None and model != entry.model:
                    entry.remove(node_id)
                else:
                    entry.put(node_id, decode_array(data))
        entry.seq, entry.graph = seq, graph


_default: VectorCache | None = None


def default_cache() -> VectorCache:
    """This process's cache, bounded by AIA_SEARCH_CACHE_MAX_VECTORS."""
    global _default
    if _default is None:
        from aia_engine.settings import get_settings

        _default = VectorCache(get_settings().search_cache_max_vectors)
    return _default
