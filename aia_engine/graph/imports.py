"""Bulk import of a client's knowledge graph from JSON Lines or CSV (`aia-engine kg import`).

File formats (both read by `read_rows`, both written by `graph.exports`):

* JSON Lines: one object per line, `{"kind": "node", "node_id", "type", "properties"}` or
  `{"kind": "relationship", "relationship_id"?, "type", "source", "target", "properties"}`.
  Without `kind`, a line with `source` or `target` is a relationship, any other a node.
  Blank lines are skipped.
* CSV: a header row. The columns `kind`, `node_id`, `type`, `source`, `target` and
  `relationship_id` are the items' own fields (kept as text); `properties`, when present, holds
  a JSON object of further properties (nested values, booleans, null, strings that look like
  numbers); every other column is one property. A property cell reads as a number when it is
  one (`12`, `-3.5`, `1e3`; not `007`, which stays text), otherwise as text; an empty cell is
  absent. Without a `kind` cell, a row with `source` or `target` is a relationship. Nodes and
  relationships may share one file, or come in two files (a node file without source/target
  columns, a relationship file without node_id).

Writing (`import_rows`) follows the graph's writer rules: each chunk of rows is one transaction
that takes the next graph version (`versions.begin_write`), COPYs the chunk into a temporary
staging table, upserts it with one set-based `INSERT .. SELECT .. ON CONFLICT DO UPDATE .. WHERE
changed` (a row equal to the stored one is unchanged: not stamped, not counted, no event), keeps
the graph's counts, records ONE `knowledge_graph.imported` event counting what the chunk
changed, and marks the chunk's written nodes pending for their vectors (`search.indexing`).
A chunk that changes nothing is rolled back: no version, no event. Nodes are written
before relationships (the file is read twice), so a relationship may name a node that comes
later in the file. A relationship whose ends do not exist, or that would change the type or ends
of a stored one, is a per-row error reported with its line; the rest of its chunk is written.
Within a chunk the last row of an id wins.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from aia_engine.db.direct import in_session, sqlalchemy_errors
from aia_engine.db.session import Sessions
from aia_engine.errors import InvalidRequest, NotFound
from aia_engine.graph import changes, versions
from aia_engine.graph import embedding_marks as indexing
from aia_engine.graph.model import ItemError, NodeIn, RelationshipIn, node_from, relationship_from

FORMATS = ("jsonl", "csv")
NODE, RELATIONSHIP = "node", "relationship"
KINDS = (NODE, RELATIONSHIP)
CSV_FIELDS = ("kind", "node_id", "type", "source", "target", "relationship_id")
"""CSV columns that are an item's own fields, not properties (kept as text)."""
CSV_PROPERTIES = "properties"
"""The CSV column holding a JSON object of further properties."""
DEFAULT_CHUNK_SIZE = 5000
MAX_LINE_BYTES = 1024 * 1024

_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]")


# -- Reading rows -------------------------------------------------------------------------------


class GraphImportFileError(InvalidRequest):
    """Raised when an import file cannot be read as a graph file at all (a variant of E001;
    one bad row is a per-row error instead, and the rest of the file is imported)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(
            f"{path}: {message}", field="file", issue=message, provided_value=str(path)
        )


@dataclass(frozen=True)
class Row:
    """One line of an import file: a node, a relationship, or why it cannot be one."""

    line: int
    kind: str
    """`node` or `relationship` (a line whose kind cannot be told counts as a node's)."""
    node: NodeIn | None = None
    relationship: RelationshipIn | None = None
    error: str | None = None


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    rows: int
    """Non-blank lines (JSON Lines) or data rows (CSV): what the progress bar counts to."""


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise GraphImportFileError(path, f"unknown format {fmt!r}; use jsonl or csv")
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def inspect_file(path: Path, fmt: str) -> FileInfo:
    """The file's checksum and row count, reading it once; refuses what is not UTF-8 text."""
    digest = hashlib.sha256()
    rows = 0
    number = 0
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                try:
                    decoded = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise GraphImportFileError(
                        path, f"line {number} is not UTF-8 text (byte {exc.start + 1} of the line)"
                    ) from None
                if decoded.strip():
                    rows += 1
    except IsADirectoryError:
        raise GraphImportFileError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise GraphImportFileError(path, f"cannot read the file ({exc.strerror})") from None
    return FileInfo(digest.hexdigest(), max(0, rows - (1 if fmt == "csv" else 0)))


def read_rows(path: Path, fmt: str, kinds: Iterable[str] = KINDS) -> Iterator[Row]:
    """Each row of the file, of the given kinds, in file order."""
    wanted = set(kinds)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = _csv_rows(path, handle, wanted) if fmt == "csv" else _json_rows(handle, wanted)
            for row in rows:
                if row.kind in wanted:
                    yield row
    except UnicodeDecodeError:
        raise GraphImportFileError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise GraphImportFileError(path, f"cannot read the file ({exc.strerror})") from None


def _json_rows(handle: Iterable[str], kinds: set[str]) -> Iterator[Row]:
    for number, text_line in enumerate(handle, start=1):
        if text_line.strip():
            yield parse_json_line(text_line, number, kinds)


def parse_json_line(line_text: str, line: int, kinds: Iterable[str] = KINDS) -> Row:
    """A row from one JSON Lines line (only its kind, unchecked, when not of `kinds`)."""
    if len(line_text) > MAX_LINE_BYTES:
        return Row(line, NODE, error=f"the line is longer than {MAX_LINE_BYTES // 1024} KB")
    try:
        item = json.loads(line_text)
    except json.JSONDecodeError as exc:
        return Row(line, NODE, error=f"not valid JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return Row(line, NODE, error=f"not usable JSON: {exc or 'nested too deeply'}")
    if not isinstance(item, dict):
        return Row(
            line,
            NODE,
            error=f"a line is a JSON object (a node or a relationship), not {_kind(item)}",
        )
    return row_from_item(item, line, kinds)


def row_from_item(item: dict[str, Any], line: int, kinds: Iterable[str] = KINDS) -> Row:
    """A row from an object with `kind` (or without: `source`/`target` make a relationship)."""
    item = dict(item)
    kind = item.pop("kind", None)
    if kind is None:
        kind = RELATIONSHIP if ("source" in item or "target" in item) else NODE
    if kind not in KINDS:
        return Row(line, NODE, error=f"kind must be 'node' or 'relationship', not {kind!r}")
    if kind not in kinds:
        return Row(line, kind)  # the other pass reads it
    try:
        if kind == NODE:
            return Row(line, NODE, node=node_from(item, "node"))
        return Row(line, RELATIONSHIP, relationship=relationship_from(item, "relationship"))
    except ItemError as exc:
        return Row(line, kind, error=str(exc))


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def csv_value(cell: str) -> Any:
    """A CSV property cell's value: a number when it reads as one, otherwise the text."""
    if _INT.fullmatch(cell):
        return int(cell)
    if _FLOAT.fullmatch(cell) and not _LEADING_ZERO.match(cell):
        value = float(cell)
        if math.isfinite(value):
            return value
    return cell


def check_csv_header(path: Path, header: list[str] | None) -> list[str]:
    if header is None or not any(h.strip() for h in header):
        raise GraphImportFileError(
            path,
            "a CSV graph file needs a header row: kind,node_id,type,source,target,"
            "relationship_id (those present) and one column per property",
        )
    names = [h.strip() for h in header]
    if "" in names or len(set(names)) != len(names):
        raise GraphImportFileError(
            path, "every CSV header cell must name a column, once: " + ",".join(names)
        )
    if "type" not in names or not ({"node_id", "source"} & set(names)):
        raise GraphImportFileError(
            path,
            "the CSV header needs a type column and node_id (nodes) or source and target "
            f"(relationships); it has {','.join(names)}",
        )
    return names


def _csv_rows(path: Path, handle: io.TextIOBase | Any, kinds: set[str]) -> Iterator[Row]:
    reader = csv.reader(handle, strict=True)
    try:
        names = check_csv_header(path, next(reader, None))
        start = reader.line_num + 1
        for cells in reader:
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            yield parse_csv_record(names, cells, number, kinds)
    except csv.Error as exc:
        raise GraphImportFileError(
            path, f"not valid CSV near line {reader.line_num}: {exc}"
        ) from None


def parse_csv_record(
    names: list[str], cells: list[str], line: int, kinds: Iterable[str] = KINDS
) -> Row:
    """A row from one CSV record under the header `names`."""
    if len(cells) != len(names):
        return Row(line, NODE, error=f"{len(cells)} cells; the header has {len(names)} columns")
    try:
        own, properties = _csv_cells(names, cells)
    except ValueError as exc:
        return Row(line, NODE, error=str(exc))
    kind = own.pop("kind", None)
    if kind is None:
        kind = RELATIONSHIP if ("source" in own or "target" in own) else NODE
    if kind == NODE:
        stray = sorted({"source", "target", "relationship_id"} & set(own))
        if stray:
            return Row(line, NODE, error=f"a node row leaves {', '.join(stray)} empty")
    elif kind == RELATIONSHIP and "node_id" in own:
        return Row(line, RELATIONSHIP, error="a relationship row leaves node_id empty")
    return row_from_item({"kind": kind, **own, "properties": properties}, line, kinds)


def _csv_cells(names: list[str], cells: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The record's own fields (text) and its properties (columns and the properties cell)."""
    own: dict[str, str] = {}
    properties: dict[str, Any] = {}
    extra: Any = {}
    for name, cell in zip(names, cells, strict=True):
        if cell == "":
            continue
        if name in CSV_FIELDS:
            own[name] = cell
        elif name == CSV_PROPERTIES:
            try:
                extra = json.loads(cell)
            except (ValueError, RecursionError):
                raise ValueError("the properties cell is not valid JSON") from None
            if not isinstance(extra, dict):
                raise ValueError("the properties cell must hold a JSON object")
        else:
            properties[name] = csv_value(cell)
    both = sorted(set(extra) & set(properties))
    if both:
        raise ValueError(f"property {both[0]!r} is both a column and in properties")
    properties.update(extra)
    return own, properties


# -- Writing chunks -----------------------------------------------------------------------------


@dataclass
class ChunkResult:
    kind: str
    rows: int
    """Rows of the file this chunk covered (written, unchanged or refused)."""
    first_line: int
    last_line: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    version: int | None = None
    """The graph version the chunk wrote, or None when it changed nothing."""


@dataclass
class ImportSummary:
    rows: int = 0
    nodes_created: int = 0
    nodes_updated: int = 0
    nodes_unchanged: int = 0
    relationships_added: int = 0
    relationships_updated: int = 0
    relationships_unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    chunks: int = 0
    """Chunks committed (or found unchanged) by this run."""
    events: int = 0
    skipped: int = 0
    """Rows an earlier run had imported (resumed from the state file)."""
    elapsed_s: float = 0.0
    interrupted: bool = False
    stopped: bool = False
    """Stopped by `max_chunks` before the end of the file."""

    def add(self, chunk: ChunkResult) -> None:
        self.rows += chunk.rows
        self.chunks += 1
        self.errors += chunk.errors
        if chunk.version is not None:
            self.events += 1
        if chunk.kind == NODE:
            self.nodes_created += chunk.created
            self.nodes_updated += chunk.updated
            self.nodes_unchanged += chunk.unchanged
        else:
            self.relationships_added += chunk.created
            self.relationships_updated += chunk.updated
            self.relationships_unchanged += chunk.unchanged

    @property
    def created(self) -> int:
        return self.nodes_created + self.relationships_added

    @property
    def updated(self) -> int:
        return self.nodes_updated + self.relationships_updated

    @property
    def unchanged(self) -> int:
        return self.nodes_unchanged + self.relationships_unchanged

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": len(self.errors),
            "nodes": {"created": self.nodes_created, "updated": self.nodes_updated,
                      "unchanged": self.nodes_unchanged},
            "relationships": {"created": self.relationships_added,
                              "updated": self.relationships_updated,
                              "unchanged": self.relationships_unchanged},
            "error_lines": [{"line": n, "message": m} for n, m in sorted(self.errors)],
            "chunks": self.chunks,
            "events": self.events,
            "resumed_rows": self.skipped,
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "stopped": self.stopped,
        }  # fmt: skip


OnChunk = Callable[[ChunkResult], None]


def require_client(sessions: Sessions, client_id: str) -> None:
    """Refuse a client id that names no API client (a graph belongs to a client)."""
    with sessions() as session:
        found = session.execute(
            text("SELECT 1 FROM api_clients WHERE client_id = :c"), {"c": client_id}
        ).first()
    if found is None:
        raise NotFound(
            f"client {client_id!r} not found; `aia-engine clients list` shows the clients",
            client_id=client_id,
        )


def import_rows(
    sessions: Sessions,
    client_id: str,
    rows: Iterable[Row],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: OnChunk | None = None,
    source: str = "import",
) -> ImportSummary:
    """Write `rows` into the client's graph, `chunk_size` rows per transaction; `on_chunk` is
    called after each chunk commits. Node rows are written as they come; relationship rows
    are held until every node row is in (`import_file` reads a file twice instead, holding
    nothing)."""
    summary = ImportSummary()
    held: list[Row] = []

    def done(chunk: ChunkResult) -> None:
        summary.add(chunk)
        if on_chunk is not None:
            on_chunk(chunk)

    nodes: list[Row] = []
    for row in rows:
        if row.kind == RELATIONSHIP:
            held.append(row)
            continue
        nodes.append(row)
        if len(nodes) >= chunk_size:
            done(write_chunk(sessions, client_id, NODE, nodes, source=source))
            nodes = []
    if nodes:
        done(write_chunk(sessions, client_id, NODE, nodes, source=source))
    for start in range(0, len(held), chunk_size):
        part = held[start : start + chunk_size]
        done(write_chunk(sessions, client_id, RELATIONSHIP, part, source=source))
    return summary


def write_chunk(
    sessions: Sessions, client_id: str, kind: str, rows: list[Row], *, source: str = "import"
) -> ChunkResult:
    """One chunk of rows of one kind in one transaction (see the module's docstring)."""
    result = ChunkResult(kind, len(rows), rows[0].line, rows[-1].line)
    result.errors = [(r.line, r.error) for r in rows if r.error is not None]
    good = [r for r in rows if r.error is None]
    if not good:
        return result
    with sessions() as session, sqlalchemy_errors():
        version = versions.begin_write(session, client_id)
        if kind == NODE:
            types = _write_nodes(session, client_id, version, good, result)
            counts = {"created": result.created, "updated": result.updated}
            versions.add_counts(session, client_id, nodes=result.created, relationships=0)
        else:
            types = _write_relationships(session, client_id, version, good, result)
            counts = {"relationship_added": result.created, "updated": result.updated}
            versions.add_counts(session, client_id, nodes=0, relationships=result.created)
        if not (result.created or result.updated):
            session.rollback()  # nothing changed: no version, no event
            return result
        changes.record_summary(
            session,
            client_id,
            version,
            counts=counts,
            entity_types=sorted(types),
            source=source,
            details={
                "kind": kind,
                "rows": result.rows,
                "unchanged": result.unchanged,
                "errors": len(result.errors),
                "lines": [result.first_line, result.last_line],
            },
        )
        if kind == NODE:
            indexing.mark_pending(session, client_id, version)
        session.commit()
    if kind == NODE:
        indexing.notify([client_id])
    result.version = version
    return result


def _copy_text(values: Iterable[tuple[Any, ...]]) -> bytes:
    """COPY text format; ids, types and JSON text hold no control characters (checked), so
    only backslashes need escaping."""
    out = io.StringIO()
    for value in values:
        out.write("\t".join(str(v).replace("\\", "\\\\") for v in value))
        out.write("\n")
    return out.getvalue().encode("utf-8")


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_NODES_STAGE = (
    "CREATE TEMP TABLE kg_import_nodes (line int, node_id text, type text, properties jsonb) "
    "ON COMMIT DROP"
)
_NODES_UPSERT = """
WITH up AS (
  INSERT INTO kg_nodes AS n (client_id, node_id, type, properties, version)
  SELECT %(client)s, node_id, type, properties, %(version)s FROM kg_import_nodes
  ON CONFLICT (client_id, node_id) DO UPDATE
     SET type = EXCLUDED.type, properties = EXCLUDED.properties, version = EXCLUDED.version,
         updated_at = now()
   WHERE n.type <> EXCLUDED.type OR n.properties <> EXCLUDED.properties
  RETURNING n.type, (n.xmax = 0) AS created
)
SELECT type, created, count(*) FROM up GROUP BY type, created
"""


def _write_nodes(
    session: Session, client_id: str, version: int, rows: list[Row], result: ChunkResult
) -> set[str]:
    latest: dict[str, Row] = {}
    for row in rows:
        assert row.node is not None
        latest[row.node.node_id] = row  # the last row of an id wins
    conn = in_session(session)
    with conn.cursor() as cur:
        cur.execute(_NODES_STAGE)
        with cur.copy("COPY kg_import_nodes (line, node_id, type, properties) FROM STDIN") as cp:
            cp.write(_copy_text(
                (r.line, r.node.node_id, r.node.type, _dumps(r.node.properties))
                for r in latest.values() if r.node is not None
            ))  # fmt: skip
        cur.execute(_NODES_UPSERT, {"client": client_id, "version": version})
        return _tally(cur.fetchall(), len(rows), result)


def _tally(grouped: list[tuple[Any, ...]], total: int, result: ChunkResult) -> set[str]:
    types: set[str] = set()
    for entity_type, created, count in grouped:
        types.add(entity_type)
        if created:
            result.created += count
        else:
            result.updated += count
    result.unchanged = total - result.created - result.updated
    return types


_RELS_STAGE = (
    "CREATE TEMP TABLE kg_import_rels (line int, relationship_id text, type text, "
    "source_id text, target_id text, properties jsonb) ON COMMIT DROP"
)
_RELS_MISSING_ENDS = """
DELETE FROM kg_import_rels s
 WHERE NOT EXISTS (SELECT 1 FROM kg_nodes n WHERE n.client_id = %(client)s
                     AND n.node_id = s.source_id)
    OR NOT EXISTS (SELECT 1 FROM kg_nodes n WHERE n.client_id = %(client)s
                     AND n.node_id = s.target_id)
RETURNING s.line, s.source_id, s.target_id,
          EXISTS (SELECT 1 FROM kg_nodes n WHERE n.client_id = %(client)s
                    AND n.node_id = s.source_id)
"""
_RELS_FIXED = """
DELETE FROM kg_import_rels s USING kg_relationships r
 WHERE r.client_id = %(client)s AND r.relationship_id = s.relationship_id
   AND (r.type, r.source_id, r.target_id) IS DISTINCT FROM (s.type, s.source_id, s.target_id)
RETURNING s.line, s.relationship_id, r.type, r.source_id, r.target_id
"""
_RELS_UPSERT = """
WITH up AS (
  INSERT INTO kg_relationships AS r
         (client_id, relationship_id, type, source_id, target_id, properties, version)
  SELECT %(client)s, relationship_id, type, source_id, target_id, properties, %(version)s
    FROM kg_import_rels
  ON CONFLICT (client_id, relationship_id) DO UPDATE
     SET properties = EXCLUDED.properties, version = EXCLUDED.version, updated_at = now()
   WHERE r.properties <> EXCLUDED.properties
  RETURNING r.type, (r.xmax = 0) AS created
)
SELECT type, created, count(*) FROM up GROUP BY type, created
"""


def _write_relationships(
    session: Session, client_id: str, version: int, rows: list[Row], result: ChunkResult
) -> set[str]:
    latest: dict[str, Row] = {}
    for row in rows:
        assert row.relationship is not None
        latest[row.relationship.relationship_id] = row
    conn = in_session(session)
    params = {"client": client_id, "version": version}
    with conn.cursor() as cur:
        cur.execute(_RELS_STAGE)
        copy_sql = (
            "COPY kg_import_rels (line, relationship_id, type, source_id, target_id, properties) "
            "FROM STDIN"
        )
        with cur.copy(copy_sql) as cp:
            cp.write(_copy_text(
                (r.line, r.relationship.relationship_id, r.relationship.type,
                 r.relationship.source, r.relationship.target, _dumps(r.relationship.properties))
                for r in latest.values() if r.relationship is not None
            ))  # fmt: skip
        cur.execute(_RELS_MISSING_ENDS, params)
        refused = 0
        for line, source_id, target_id, has_source in cur.fetchall():
            missing = f"target {target_id!r}" if has_source else f"source {source_id!r}"
            result.errors.append(
                (line, f"relationship {missing} is not a node of this graph (import the node "
                       "in the same file or before)")
            )  # fmt: skip
            refused += 1
        cur.execute(_RELS_FIXED, params)
        for line, rel_id, rel_type, source_id, target_id in cur.fetchall():
            result.errors.append(
                (line, f"relationship {rel_id!r} exists as ({source_id})-[:{rel_type}]->"
                       f"({target_id}); its type, source and target cannot change (delete it "
                       "and create it again)")
            )  # fmt: skip
            refused += 1
        cur.execute(_RELS_UPSERT, params)
        return _tally(cur.fetchall(), len(rows) - refused, result)


# -- Files, resumable ---------------------------------------------------------------------------


@dataclass
class ImportState:
    """What a resumable import has committed: rows of each kind, in file order (offsets in
    the sequence of that kind's rows), and the totals so far. Kept as JSON in a state file."""

    sha256: str
    client_id: str
    done: dict[str, int] = field(default_factory=lambda: {NODE: 0, RELATIONSHIP: 0})
    finished: bool = False
    totals: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"format": 1, "sha256": self.sha256, "client_id": self.client_id, "done": self.done,
             "finished": self.finished, "totals": self.totals}, indent=1
        )  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> ImportState:
        if not isinstance(data, dict) or data.get("format") != 1:
            raise ValueError("not an import state file")
        done = data.get("done")
        if not isinstance(done, dict) or not all(
            isinstance(done.get(k), int) and done[k] >= 0 for k in KINDS
        ):
            raise ValueError("not an import state file")
        return cls(
            str(data["sha256"]),
            str(data["client_id"]),
            {k: int(done[k]) for k in KINDS},
            bool(data.get("finished")),
            dict(data.get("totals") or {}),
        )


class _Stop(Exception):
    pass


def import_file(
    sessions: Sessions,
    client_id: str,
    path: Path,
    *,
    fmt: str,
    state: ImportState,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: OnChunk | None = None,
    max_chunks: int | None = None,
) -> ImportSummary:
    """Import the file from where `state` says earlier runs stopped: nodes first, then
    relationships (reading the file twice). `on_chunk` runs after each committed chunk, once
    `state` has advanced (save it there). Ctrl-C stops between statements: the open chunk is
    rolled back and the summary says `interrupted`."""
    began = time.monotonic()
    summary = ImportSummary()
    summary.skipped = state.done[NODE] + state.done[RELATIONSHIP]
    written = 0

    def committed(chunk: ChunkResult) -> None:
        nonlocal written
        summary.add(chunk)
        state.done[chunk.kind] += chunk.rows
        written += 1
        if on_chunk is not None:
            on_chunk(chunk)
        if max_chunks is not None and written >= max_chunks:
            raise _Stop

    try:
        for kind in KINDS:
            rows = read_rows(path, fmt, [kind])
            skip = state.done[kind]
            chunk: list[Row] = []
            for row in rows:
                if skip:
                    skip -= 1
                    continue
                chunk.append(row)
                if len(chunk) >= chunk_size:
                    committed(write_chunk(sessions, client_id, kind, chunk))
                    chunk = []
            if chunk:
                committed(write_chunk(sessions, client_id, kind, chunk))
        state.finished = True
    except _Stop:
        summary.stopped = True
        state.finished = _at_end(path, fmt, state)
        summary.stopped = not state.finished
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed_s = time.monotonic() - began
    return summary


def _at_end(path: Path, fmt: str, state: ImportState) -> bool:
    """True when the committed offsets cover every row of the file."""
    return all(sum(1 for _ in read_rows(path, fmt, [kind])) <= state.done[kind] for kind in KINDS)
