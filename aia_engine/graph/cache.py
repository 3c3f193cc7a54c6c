"""Each client's graph as a networkx MultiDiGraph, cached in this process and kept current.

A query reads the graph's version (one indexed read). When the cached copy is older, it catches
up in place: rows stamped with a newer version are upserted and newer tombstones removed, all
read in one REPEATABLE READ snapshot with the version, so the copy is exactly that version. It
loads the whole graph instead when it has none, when its copy is older than the tombstones kept
(`tombstones_from`) or when the change is large. Queries read under a shared lock and a catch-up
writes under the exclusive one, so a query never sees a half-applied change.

Node attributes: the properties, `node_id`, `type`, `__labels__` (model.labels_for, shared per
type) and `__updated__` (updated_at). Edge key: `relationship_id`; attributes: the properties,
`relationship_id`, `type`, `source`, `target` and `__labels__` ({type}, shared per type).
The cache holds at most AIA_KG_CACHE_MAX_ITEMS nodes + relationships over all clients (~0.9 KB
each, measured: 86 MB per 100k relationships with two properties); the
least recently queried graphs go first (the one being queried stays, whatever its size).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.db.session import Sessions
from aia_engine.graph.model import labels_for
from aia_engine.graph.versions import read_state

_NODES = text(
    "SELECT node_id, type, properties, updated_at FROM kg_nodes WHERE client_id = :client"
)
_RELS = text(
    "SELECT relationship_id, type, source_id, target_id, properties FROM kg_relationships "
    "WHERE client_id = :client"
)
_NEW_NODES = text(
    "SELECT node_id, type, properties, updated_at FROM kg_nodes "
    "WHERE client_id = :client AND version > :since"
)
_NEW_RELS = text(
    "SELECT relationship_id, type, source_id, target_id, properties FROM kg_relationships "
    "WHERE client_id = :client AND version > :since"
)
_COUNT_NEW = text(
    "SELECT (SELECT count(*) FROM kg_nodes WHERE client_id = :client AND version > :since) "
    "+ (SELECT count(*) FROM kg_relationships WHERE client_id = :client AND version > :since) "
    "+ (SELECT count(*) FROM kg_tombstones WHERE client_id = :client AND version > :since)"
)
_TOMBSTONES = text(
    "SELECT kind, item_id FROM kg_tombstones WHERE client_id = :client AND version > :since "
    "ORDER BY version, id"
)
STREAM_ROWS = 5000


class ReadWriteLock:
    """Many readers or one writer; a waiting writer lets no new reader in (no starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class CachedGraph:
    client_id: str
    graph: nx.MultiDiGraph
    version: int
    rel_source: dict[str, str]
    """relationship_id -> its source node id (to find an edge from a tombstone)."""
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)

    @property
    def items(self) -> int:
        """Nodes + relationships, in constant time (networkx counts multigraph edges one by
        one: ~80 ms on 100k)."""
        return len(self.graph._node) + len(self.rel_source)


@dataclass(frozen=True)
class Access:
    """What a query got from the cache: the graph at `version`, and whether the cached copy
    was current (`hit`), caught up (`caught_up`) or loaded (`loaded`)."""

    entry: CachedGraph
    hit: bool
    caught_up: bool
    loaded: bool


class _Labels:
    """One labels set per type, shared by every node (edge) of that type."""

    def __init__(self) -> None:
        self.nodes: dict[str, frozenset[str]] = {}
        self.edges: dict[str, set[str]] = {}

    def node(self, node_type: str) -> frozenset[str]:
        found = self.nodes.get(node_type)
        if found is None:
            found = self.nodes[node_type] = labels_for(node_type)
        return found

    def edge(self, rel_type: str) -> set[str]:
        # grand-cypher's type(r) reads a `set` (not a frozenset); nothing mutates it.
        found = self.edges.get(rel_type)
        if found is None:
            found = self.edges[rel_type] = {rel_type}
        return found


_LABELS = _Labels()


def node_attributes(
    node_id: str, node_type: str, props: dict[str, Any], updated: Any
) -> dict[str, Any]:
    attrs = dict(props)
    attrs["node_id"] = node_id
    attrs["type"] = node_type
    attrs["__labels__"] = _LABELS.node(node_type)
    attrs["__updated__"] = updated
    return attrs


def edge_attributes(
    rel_id: str, rel_type: str, source: str, target: str, props: dict[str, Any]
) -> dict[str, Any]:
    attrs = dict(props)
    attrs["relationship_id"] = rel_id
    attrs["type"] = rel_type
    attrs["source"] = source
    attrs["target"] = target
    attrs["__labels__"] = _LABELS.edge(rel_type)
    return attrs


class GraphCache:
    """Per-process cache of client graphs (thread-safe)."""

    def __init__(self, max_items: int, *, full_reload_fraction: float = 0.5) -> None:
        self.max_items = max_items
        self.full_reload_fraction = full_reload_fraction
        self._graphs: OrderedDict[str, CachedGraph] = OrderedDict()
        self._lock = threading.Lock()
        self._loaders: dict[str, threading.Lock] = {}

    def cached(self, client_id: str) -> CachedGraph | None:
        with self._lock:
            return self._graphs.get(client_id)

    def clear(self) -> None:
        with self._lock:
            self._graphs.clear()

    @contextmanager
    def reading(
        self, sessions: Sessions, client_id: str, *, access: Access | None = None
    ) -> Iterator[Access]:
        """The client's graph, current as of now (or as of `access`, got from `current` just
        before), held under the read lock while in use."""
        if access is None or access.entry.client_id != client_id:
            access = self.current(sessions, client_id)
        with access.entry.lock.reading():
            yield access

    def current(self, sessions: Sessions, client_id: str) -> Access:
        """Bring the client's cached graph up to its version in PostgreSQL (load, or catch up
        in place under the graph's write lock, which waits for running queries to end). The
        API calls this before taking a query slot, so a catch-up waiting for another query
        never holds a slot that other clients' queries need."""
        with sessions() as session:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            state = read_state(session, client_id)
            entry = self._touch(client_id)
            if entry is not None and entry.version >= state.version:
                return Access(entry, hit=True, caught_up=False, loaded=False)
            with self._loader(client_id):
                entry = self._touch(client_id)
                if entry is not None and entry.version >= state.version:
                    return Access(entry, hit=False, caught_up=True, loaded=False)
                if entry is not None and entry.version >= state.tombstones_from:
                    changed = int(
                        session.execute(
                            _COUNT_NEW, {"client": client_id, "since": entry.version}
                        ).scalar_one()
                    )
                    if changed <= max(1000, self.full_reload_fraction * entry.items):
                        with entry.lock.writing():
                            _apply_changes(session, entry, state.version)
                        self._evict(keep=client_id)
                        return Access(entry, hit=False, caught_up=True, loaded=False)
                fresh = _load(session, client_id, state.version)
                with self._lock:
                    self._graphs[client_id] = fresh
                    self._graphs.move_to_end(client_id)
                self._evict(keep=client_id)
                return Access(fresh, hit=False, caught_up=False, loaded=True)

    def _touch(self, client_id: str) -> CachedGraph | None:
        with self._lock:
            entry = self._graphs.get(client_id)
            if entry is not None:
                self._graphs.move_to_end(client_id)
            return entry

    def _loader(self, client_id: str) -> threading.Lock:
        with self._lock:
            lock = self._loaders.get(client_id)
            if lock is None:
                lock = self._loaders[client_id] = threading.Lock()
            return lock

    def _evict(self, *, keep: str) -> None:
        with self._lock:
            total = sum(e.items for e in self._graphs.values())
            for client_id in list(self._graphs):
                if total <= self.max_items:
                    break
                if client_id == keep:
                    continue
                total -= self._graphs.pop(client_id).items


def _load(session: Session, client_id: str, version: int) -> CachedGraph:
    """The client's whole graph, streamed from a server-side cursor."""
    graph = nx.MultiDiGraph()
    rel_source: dict[str, str] = {}
    canonical: dict[str, str] = {}  # one string object per node id, shared by its edges
    params = {"client": client_id}
    streamed = session.execute(_NODES, params, execution_options={"yield_per": STREAM_ROWS})
    for node_id, node_type, props, updated in streamed:
        canonical[node_id] = node_id
        graph.add_node(node_id, **node_attributes(node_id, node_type, props, updated))
    streamed = session.execute(_RELS, params, execution_options={"yield_per": STREAM_ROWS})
    for rel_id, rel_type, source, target, props in streamed:
        source, target = canonical.get(source, source), canonical.get(target, target)
        graph.add_edge(
            source, target, key=rel_id, **edge_attributes(rel_id, rel_type, source, target, props)
        )
        rel_source[rel_id] = source
    return CachedGraph(client_id, graph, version, rel_source)


def _apply_changes(session: Session, entry: CachedGraph, version: int) -> None:
    """Bring `entry` from its version to `version` in place (caller holds its write lock)."""
    graph, params = entry.graph, {"client": entry.client_id, "since": entry.version}
    for kind, item_id in session.execute(_TOMBSTONES, params):
        if kind == "node":
            _remove_node(entry, item_id)
        else:
            _remove_edge(entry, item_id)
    for node_id, node_type, props, updated in session.execute(_NEW_NODES, params):
        attrs = node_attributes(node_id, node_type, props, updated)
        current = graph._node.get(node_id)
        if current is None:
            graph.add_node(node_id, **attrs)
        else:  # the same dict object: grand-cypher and networkx views keep pointing at it
            current.clear()
            current.update(attrs)
    for rel_id, rel_type, source, target, props in session.execute(_NEW_RELS, params):
        attrs = edge_attributes(rel_id, rel_type, source, target, props)
        current_source = entry.rel_source.get(rel_id)
        existing = graph._succ.get(source, {}).get(target, {}).get(rel_id)
        if current_source is not None and existing is None:
            _remove_edge(entry, rel_id)  # its ends changed (deleted and re-created)
        if existing is not None:
            existing.clear()
            existing.update(attrs)
        else:
            graph.add_edge(source, target, key=rel_id, **attrs)
            entry.rel_source[rel_id] = source
    entry.version = version


def _remove_node(entry: CachedGraph, node_id: str) -> None:
    graph = entry.graph
    if node_id not in graph._node:
        return
    for _, _, key in graph.out_edges(node_id, keys=True):
        entry.rel_source.pop(key, None)
    for _, _, key in graph.in_edges(node_id, keys=True):
        entry.rel_source.pop(key, None)
    graph.remove_node(node_id)


def _remove_edge(entry: CachedGraph, rel_id: str) -> None:
    source = entry.rel_source.pop(rel_id, None)
    if source is None:
        return
    for target, keys in entry.graph._succ.get(source, {}).items():
        if rel_id in keys:
            entry.graph.remove_edge(source, target, key=rel_id)
            return


_PROCESS_CACHE: GraphCache | None = None
_PROCESS_LOCK = threading.Lock()


def process_cache(max_items: int) -> GraphCache:
    """This process's cache (API or worker), made on first use."""
    global _PROCESS_CACHE
    with _PROCESS_LOCK:
        if _PROCESS_CACHE is None:
            _PROCESS_CACHE = GraphCache(max_items)
        return _PROCESS_CACHE
