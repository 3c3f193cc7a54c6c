"""Run a client's Cypher query on its cached graph: `run_query`, used by POST
/knowledge-graph/query and by workflow stages in workers.

grand-cypher does the matching. Around it, this module:
- turns its automatic WHERE/property hints off (on 10k nodes / 100k edges they cost ~50 ms a
  query, quadratic in the hints) and re-uses parse trees (cypher.parse caches them);
- counts the host nodes each query checks and stops it at its deadline or match cap: the
  module-level match functions grand-cypher and grandiso call are wrapped, and so is the
  executor's match iterator (a thread-local says which query is running in this thread);
- makes aggregates, DISTINCT and a cartesian product of MATCH clauses right: grand-cypher stops
  collecting matches at LIMIT even when it then aggregates (`count(n) LIMIT 1` answered 1), and
  builds a cartesian product as one list in memory (no deadline could stop it);
- shapes the answer as the guide does: a node as {node_id, type, properties, connections,
  last_updated}, a relationship as {relationship_id, type, source, target, properties}, one
  column as a list of values, several columns as objects by column name.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grandcypher
import grandiso
import networkx as nx
from grandcypher.types import AttributeRef, EntityRef, ExpressionBase, IDRef
from lark import Token, Tree
from lark.exceptions import VisitError

from aia_engine.db.session import Sessions
from aia_engine.errors import CypherSyntaxError, EngineError, QueryFailed, QueryLimitExceeded
from aia_engine.graph.cache import Access, GraphCache, process_cache
from aia_engine.graph.cypher import Prepared, parse, prepare
from aia_engine.settings import Settings

log = logging.getLogger(__name__)

_CHECK_EVERY = 256
"""Calls between two looks at the clock."""


class _Stop(Exception):
    """Not an error: the running query reached its deadline or its match cap."""

    def __init__(self, limit: str, value: float) -> None:
        super().__init__(limit)
        self.limit, self.value = limit, value


class _Run:
    """The accounting of the query running in this thread."""

    def __init__(self, deadline: float, max_matches: int, timeout_s: float) -> None:
        self.deadline, self.max_matches, self.timeout_s = deadline, max_matches, timeout_s
        self.scanned: set[Any] = set()
        self.calls = 0
        self.matches = 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls % _CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise _Stop("timeout_s", self.timeout_s)

    def matched(self) -> None:
        self.matches += 1
        if self.matches > self.max_matches:
            raise _Stop("max_matches", self.max_matches)
        self.tick()


_local = threading.local()


def _current() -> _Run | None:
    run: _Run | None = getattr(_local, "run", None)
    return run


_node_match = grandcypher._is_node_attr_match.__wrapped__
_edge_match = grandcypher._is_edge_attr_match.__wrapped__


def _counted_node_match(motif_node_id: Any, host_node_id: Any, motif: Any, host: Any) -> bool:
    run = _current()
    if run is not None:
        run.scanned.add(host_node_id)
        run.tick()
    return bool(_node_match(motif_node_id, host_node_id, motif, host))


def _counted_edge_match(
    motif_edge_id: Any, host_edge_id: Any, motif: Any, host: Any, host_keys: Any = None
) -> bool:
    run = _current()
    if run is not None:
        run.scanned.update(host_edge_id)
        run.tick()
    return bool(_edge_match(motif_edge_id, host_edge_id, motif, host, host_keys))


class _Ref:
    """A node or relationship (a dict) as an aggregation group key: by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ref) and other.obj is self.obj


def _group_value(value: Any) -> Any:
    return _Ref(value) if isinstance(value, (dict, list, set)) else value


class _Executor(grandcypher.GrandCypherExecutor):  # type: ignore[misc]
    """grand-cypher's executor, bounded and with aggregates over every match."""

    def _is_limit(self, length: int) -> bool:
        if self._aggregate_functions or self._distinct:
            return False  # LIMIT applies to the aggregated (distinct) rows, not the matches
        return bool(super()._is_limit(length))

    def _apply_order_by(self, results: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        """ORDER BY as Cypher orders: numbers, then strings, then booleans, null last (first
        with DESC); grand-cypher's own fails on text beside a missing value."""
        fields = [(self._entity2alias.get(f, f), d) for f, d in self._order_by or []]
        if any(isinstance(v, dict) for name, _ in fields for v in results.get(name, [])):
            return dict(super()._apply_order_by(results))  # per-hop edge values: its own way
        rows = len(next(iter(results.values()), []))
        order = list(range(rows))
        for name, direction in reversed(fields):  # stable sorts: the first field decides last
            column = results[name]
            order.sort(key=lambda i: _order_key(column[i]), reverse=direction == "DESC")
        return {k: [v[i] for i in order] for k, v in results.items()}

    def _apply_distinct(self, results: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        """DISTINCT over the returned columns, whatever they are (grand-cypher's own fails on
        an alias or a function such as type(r), and cannot hash a node)."""
        returned = {str(r) for r in self._return_requests}
        returned |= {self._entity2alias.get(name, name) for name in returned}
        returned |= {str(f) for f in self._aggregate_functions} | set(self._alias2entity)
        keys = [k for k in results if str(k) in returned] or list(results)
        rows = len(next(iter(results.values()), []))
        first: dict[tuple[Any, ...], int] = {}
        for i in range(rows):
            first.setdefault(tuple(_group_value(results[k][i]) for k in keys), i)
        kept = list(first.values())
        return {k: [v[i] for i in kept] for k, v in results.items()}

    def _matches_iter(self, motif: nx.MultiDiGraph) -> Iterator[dict[Any, Any]]:
        run = _current()
        components = list(nx.weakly_connected_components(motif))
        if self._hints or len(components) < 2:
            for match in super()._matches_iter(motif):
                if run is not None:
                    run.matched()
                yield match
            return
        # Several MATCH clauses with nothing in common: a lazy cartesian product of each one's
        # matches (grand-cypher builds it as one list, and cuts each part at LIMIT first).
        parts = []
        for nodes in components:
            found = []
            for match in grandiso.find_motifs_iter(
                motif.subgraph(nodes),
                self._target_graph,
                is_node_attr_match=grandcypher._is_node_attr_match,
                is_edge_attr_match=grandcypher._is_edge_attr_match,
                hints=[],
            ):
                if run is not None:
                    run.matched()
                found.append(match)
            parts.append(found)
        for combination in itertools.product(*parts):
            if run is not None:
                run.matched()
            merged: dict[Any, Any] = {}
            for part in combination:
                merged.update(part)
            yield merged


def _order_key(value: Any) -> tuple[Any, ...]:
    if value is None:
        return (4,)
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


def _aggregate(
    self: Any,
    results: Any,
    group_keys: Any,
    matches: Any = None,
    host: Any = None,
    return_edges: Any = None,
) -> dict[Any, Any]:
    """grand-cypher's AggregationExpression.evaluate, grouping nodes and relationships by
    identity (its own hashes them: `RETURN c, count(p)` failed with "unhashable type")."""
    if isinstance(self.argument, str) and self.argument in results:
        values = results[self.argument]
    elif self.is_computed:
        values = [
            grandcypher._evaluate_expression(self.argument, m, host, return_edges)
            for m in matches or []
        ]
    else:
        values = results[self.argument]
    grouped: dict[Any, list[Any]] = {}
    for i, value in enumerate(values):
        group = tuple(_group_value(results[key][i]) for key in group_keys if key in results)
        grouped.setdefault(group, []).append(value)
    return {group: self.aggregate(vals) for group, vals in grouped.items()}


grandcypher.AggregationExpression.evaluate = _aggregate
grandcypher._is_node_attr_match = _counted_node_match
grandcypher._is_edge_attr_match = _counted_edge_match
grandcypher.GrandCypherExecutor = _Executor  # the transformer makes its executors by this name


class _Transformer(grandcypher.GrandCypherTransformer):  # type: ignore[misc]
    """Also records the result key of each RETURN item of the outer query, in order."""

    column_keys: list[str]

    def __init__(self, target_graph: nx.MultiDiGraph) -> None:
        super().__init__(target_graph)
        self.column_keys = []
        outer = self._executors[0]
        outer._auto_where_hints = False
        outer._auto_node_jsondata_hints = False

    def return_clause(self, clause: list[Any]) -> None:
        super().return_clause(clause)
        if len(self._executors) != 1:
            return
        keys = []
        for item in clause:
            if not item:
                continue
            alias = self._extract_alias(item)
            inner = item.children[0] if isinstance(item, Tree) else item
            if alias:
                keys.append(alias)
            elif isinstance(inner, Tree) and inner.data == "aggregation_function":
                keys.append(str(self._parse_aggregation_token(inner)))
            elif isinstance(inner, ExpressionBase) and not isinstance(
                inner, (EntityRef, AttributeRef, IDRef)
            ):
                keys.append(str(inner))
            else:
                keys.append(
                    str(inner if isinstance(inner, str) else getattr(inner, "value", inner))
                )
        self.column_keys = keys


@dataclass(frozen=True)
class QueryResult:
    results: list[Any]
    metadata: dict[str, Any]
    columns: tuple[str, ...]


def run_query(
    sessions: Sessions,
    client_id: str,
    query: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    settings: Settings,
    cache: GraphCache | None = None,
    access: Access | None = None,
) -> QueryResult:
    """Run `query` (with `parameters` bound to its `$names`) on the client's graph.

    `access`: the graph as `GraphCache.current` just brought it up to date (the API does
    that before taking a query slot); without it, this brings it up to date itself.

    Raises E030 (syntax), E031 (unsupported construct), E032 (parameters), E033 (a bound:
    text size, time, matches, answer size) or E034 (the engine could not evaluate it)."""
    started = time.perf_counter()
    tree, prepared = _compiled(query, parameters, settings)
    cache = cache or process_cache(settings.kg_cache_max_items)
    with cache.reading(sessions, client_id, access=access) as got:
        return _answer(tree, prepared, got.entry.graph, settings, started=started,
                       cache_hit=got.hit, version=got.entry.version)  # fmt: skip


def query_graph(
    graph: nx.MultiDiGraph,
    query: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    settings: Settings,
) -> QueryResult:
    """`run_query` on a graph at hand (built with cache.node_attributes/edge_attributes): the
    same preparation, bounds and answer, without the database and the cache."""
    started = time.perf_counter()
    tree, prepared = _compiled(query, parameters, settings)
    return _answer(tree, prepared, graph, settings, started=started, cache_hit=True, version=0)


def _compiled(
    query: str, parameters: Mapping[str, Any] | None, settings: Settings
) -> tuple[Tree[Token], Prepared]:
    if len(query) > settings.kg_query_max_chars:
        raise QueryLimitExceeded(
            f"the query is {len(query)} characters; at most {settings.kg_query_max_chars}",
            limit="max_chars",
            max_chars=settings.kg_query_max_chars,
        )
    prepared = prepare(query, parameters)
    return parse(prepared), prepared


def _answer(
    tree: Tree[Token],
    prepared: Prepared,
    graph: nx.MultiDiGraph,
    settings: Settings,
    *,
    started: float,
    cache_hit: bool,
    version: int,
) -> QueryResult:
    """Run the parsed query on `graph` (held under its read lock) and shape the answer."""
    run = _Run(
        time.monotonic() + settings.kg_query_timeout_s,
        settings.kg_query_max_matches,
        settings.kg_query_timeout_s,
    )
    columns, rows = _execute(tree, graph, run, settings.kg_query_max_rows)
    names = prepared.columns if len(prepared.columns) == len(columns) else tuple(columns)
    truncated = len(rows) > settings.kg_query_max_rows
    rows = rows[: settings.kg_query_max_rows]
    if len(names) == 1:
        results: list[Any] = [_public(row[0], graph) for row in rows]
    else:
        results = [
            {name: _public(value, graph) for name, value in zip(names, row, strict=True)}
            for row in rows
        ]
    size = len(json.dumps(results, ensure_ascii=False, default=str).encode())
    if size > settings.kg_query_max_result_bytes:
        raise QueryLimitExceeded(
            f"the answer is {size} bytes; at most {settings.kg_query_max_result_bytes}: return "
            "fewer rows (LIMIT) or fewer columns",
            limit="max_result_bytes",
            max_result_bytes=settings.kg_query_max_result_bytes,
        )
    metadata = {
        "execution_time_ms": round((time.perf_counter() - started) * 1000, 3),
        "total_nodes_scanned": len(run.scanned),
        "cache_hit": cache_hit,
        "graph_version": version,
        "row_count": len(results),
        "truncated": truncated,
        "columns": list(names),
    }
    return QueryResult(results, metadata, names)


def _execute(
    tree: Tree[Token], graph: nx.MultiDiGraph, run: _Run, max_rows: int
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """grand-cypher's answer as column keys and rows."""
    _local.run = run
    try:
        transformer = _Transformer(graph)
        transformer.transform(tree)
        outer = transformer._executors[0]
        for executor in transformer._executors:
            if (executor._limit is not None and executor._limit < 0) or (executor._skip or 0) < 0:
                raise CypherSyntaxError(
                    "LIMIT and SKIP take a non-negative integer", limit=executor._limit,
                    skip=executor._skip,
                )  # fmt: skip
        if outer._limit is None or outer._limit > max_rows:
            outer._limit = max_rows + 1  # one more than may be returned: says "truncated"
        answer = outer.returns()
    except _Stop as stop:
        raise _limit_error(stop) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, _Stop):
            raise _limit_error(exc.orig_exc) from None
        if isinstance(exc.orig_exc, EngineError):
            raise exc.orig_exc from None
        raise _failed(exc.orig_exc) from None
    except EngineError:
        raise
    except (RecursionError, MemoryError) as exc:
        raise _failed(exc) from None
    except Exception as exc:  # grand-cypher on a query it parsed but cannot evaluate
        raise _failed(exc) from None
    finally:
        _local.run = None
    keys = transformer.column_keys
    if outer._aggregate_functions and not outer._return_requests and not any(answer.values()):
        answer = _empty_aggregates(outer)  # count(n) over nothing is one row: 0
    columns = [answer.get(key, []) for key in keys]
    count = max((len(c) for c in columns), default=0)
    rows = [tuple(c[i] if i < len(c) else None for c in columns) for i in range(count)]
    return keys, rows


def _empty_aggregates(executor: Any) -> dict[str, list[Any]]:
    empty = {"COUNT": 0, "SUM": 0, "COLLECT": []}
    return {
        executor._entity2alias.get(str(f), str(f)): [empty.get(f.name)]
        for f in executor._aggregate_functions
    }


def _limit_error(stop: _Stop) -> QueryLimitExceeded:
    if stop.limit == "timeout_s":
        return QueryLimitExceeded(
            f"the query ran longer than {stop.value:g} s and was stopped; narrow the pattern "
            "or add WHERE conditions",
            limit="timeout_s",
            timeout_s=stop.value,
        )
    return QueryLimitExceeded(
        f"the query matched more than {int(stop.value)} patterns and was stopped; narrow the "
        "pattern or add WHERE conditions",
        limit="max_matches",
        max_matches=int(stop.value),
    )


def _failed(exc: BaseException) -> QueryFailed:
    reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    log.info("graph query could not be evaluated: %s", reason)
    return QueryFailed(f"the query could not be evaluated on this graph: {reason}", cause=reason)


def _public(value: Any, graph: nx.MultiDiGraph) -> Any:
    """A value of grand-cypher's answer as the client sees it."""
    if isinstance(value, _Ref):
        value = value.obj
    if isinstance(value, dict):
        node_id = value.get("node_id")
        if isinstance(node_id, str) and graph._node.get(node_id) is value:
            return _node(node_id, value, graph)
        rel_id, source, target = (
            value.get("relationship_id"),
            value.get("source"),
            value.get("target"),
        )
        if (
            isinstance(rel_id, str)
            and isinstance(source, str)
            and isinstance(target, str)
            and graph._succ.get(source, {}).get(target, {}).get(rel_id) is value
        ):
            return _relationship(value)
        return {str(k): _public(v, graph) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_public(v, graph) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return None  # MIN/MAX over no value
    return value


def _node(node_id: str, attrs: dict[str, Any], graph: nx.MultiDiGraph) -> dict[str, Any]:
    updated = attrs.get("__updated__")
    return {
        "node_id": node_id,
        "type": attrs.get("type"),
        "properties": {
            k: v
            for k, v in attrs.items()
            if k not in ("node_id", "type") and not k.startswith("__")
        },
        "connections": int(graph.degree(node_id)),
        "last_updated": _iso(updated),
    }


def _relationship(attrs: dict[str, Any]) -> dict[str, Any]:
    reserved = ("relationship_id", "type", "source", "target")
    return {
        "relationship_id": attrs["relationship_id"],
        "type": attrs.get("type"),
        "source": attrs["source"],
        "target": attrs["target"],
        "properties": {
            k: v for k, v in attrs.items() if k not in reserved and not k.startswith("__")
        },
    }


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return None if value is None else str(value)
