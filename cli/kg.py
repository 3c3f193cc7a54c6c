"""`aia-engine kg import FILE` and `aia-engine kg export`: a client's knowledge graph in bulk,
straight to and from PostgreSQL (an operator command, like `clients` and `datasets`)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from aia_engine.settings import Settings, get_settings
from cli.common import resolved_settings

DIRECT = (
    "It talks to PostgreSQL directly (DATABASE_URL, or the database of a running `aia-engine "
    "dev`), not through the HTTP API: it is an operator's command and needs no API credentials."
)
FORMATS_HELP = (
    'JSON Lines: one object per line, {"kind": "node", "node_id", "type", "properties"} or '
    '{"kind": "relationship", "relationship_id" (optional), "type", "source", "target", '
    '"properties"}. CSV: a header row; the columns kind, node_id, type, source, target and '
    "relationship_id are the items' own fields, a properties column may hold a JSON object, "
    "every other column is a property (a cell that reads as a number is a number, not 007; an "
    "empty cell is absent); without kind, a row with source/target is a relationship."
)
STOPPED = 3
"""Exit status when --max-chunks stopped the import before the end of the file."""


def add_parser(sub: Any) -> None:
    kg = sub.add_parser(
        "kg",
        help="import and export a client's knowledge graph (JSON Lines or CSV)",
        description="Bulk import and export of a client's knowledge graph. " + DIRECT,
    )
    ksub = kg.add_subparsers(dest="kg_command", metavar="ACTION", required=True)
    imp = ksub.add_parser(
        "import",
        help="import nodes and relationships from FILE into a client's graph; run it again "
        "to resume",
        description="Import FILE into the graph of client CLIENT_ID. "
        + FORMATS_HELP
        + " Nodes are imported first, then relationships, so a relationship may name a node "
        "further down the file. Each chunk of rows is one transaction and one "
        "knowledge_graph.imported event (counts by change type), not one event per row; a "
        "row equal to the stored item changes nothing and a chunk that changes nothing writes "
        "no event. Bad rows (bad JSON, a relationship whose source or target is not a node of "
        "the graph, ...) are reported with their line numbers and the rest is imported. A "
        "state file remembers the rows committed, by the file's checksum: after an "
        "interruption the same command continues where it stopped, and once the import "
        "finished it does nothing. " + DIRECT,
    )
    imp.add_argument("file", type=Path, help="a .jsonl or .csv file")
    imp.add_argument("--client", required=True, metavar="CLIENT_ID", help="whose graph")
    imp.add_argument("--format", choices=["jsonl", "csv"], help="default: by the extension")
    imp.add_argument(
        "--chunk-size",
        type=int,
        default=5000,
        help="rows per transaction and per event (default 5000)",
    )
    imp.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the state file (default); --no-resume reads the whole file again "
        "(rows already imported are unchanged and write nothing)",
    )
    imp.add_argument(
        "--state-file",
        type=Path,
        help="where progress is kept (default: AIA_DATA_DIR/kg-imports/, named by the file's "
        "checksum and the client)",
    )
    imp.add_argument(
        "--max-chunks",
        type=int,
        help=f"commit at most N chunks, then stop (exit status {STOPPED}); run again to continue",
    )
    bar = imp.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="draw the progress bar even when stderr is not a terminal",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(func=cmd_kg_import)

    exp = ksub.add_parser(
        "export",
        help="write a client's graph as JSON Lines or CSV (what `kg import` reads)",
        description="Write every node, then every relationship, of client CLIENT_ID's graph, "
        "from one consistent snapshot, streamed (any size). The output is what `kg import` "
        "reads: importing it into an empty graph gives the same graph. In CSV, property "
        "values that would not read back as themselves (booleans, null, arrays, objects, text "
        "such as '12') go in the properties column as JSON. " + DIRECT,
    )
    exp.add_argument("--client", required=True, metavar="CLIENT_ID", help="whose graph")
    exp.add_argument(
        "--format", choices=["jsonl", "csv"], help="default: by -o's extension, else jsonl"
    )
    exp.add_argument("-o", "--output", type=Path, help="the file to write (default: stdout)")
    exp.set_defaults(func=cmd_kg_export)


def _settings() -> Settings:
    settings = get_settings()
    return settings if settings.database_url else resolved_settings(settings)


def _sessions(settings: Settings) -> Any:
    from aia_engine.db.session import make_engine, make_sessions

    return make_sessions(make_engine(settings, pool_size=1))


@contextlib.contextmanager
def _database() -> Iterator[None]:
    """A database that cannot be reached is a clear error, not a traceback."""
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise RuntimeError(f"cannot use PostgreSQL at DATABASE_URL: {first}") from exc


class ImportBar:
    """One line on stderr, redrawn in place: rows done of the file, rate, ETA, errors."""

    def __init__(self, stream: TextIO, total: int, *, width: int = 28) -> None:
        self.stream, self.total, self.width = stream, max(total, 1), width
        self.began = time.monotonic()
        self.base = -1
        self.last_len = 0

    def update(self, done: int, errors: int) -> None:
        if self.base < 0:
            self.base = done
        done = min(done, self.total)
        elapsed = max(time.monotonic() - self.began, 1e-6)
        rate = (done - self.base) / elapsed
        left = self.total - done
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 else "--:--"
        share = done / self.total
        filled = int(self.width * share)
        line = (
            f"importing [{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total} "
            f"{share * 100:5.1f}% {rate:,.0f} rows/s ETA {eta}"
        )
        if errors:
            line += f" ({errors} errors)"
        self.stream.write("\r" + line + " " * max(0, self.last_len - len(line)))
        self.stream.flush()
        self.last_len = len(line)

    def close(self) -> None:
        if self.base >= 0:
            self.stream.write("\n")
            self.stream.flush()


def default_state_file(settings: Settings, sha256: str, client_id: str) -> Path:
    client = hashlib.sha256(client_id.encode()).hexdigest()[:8]
    return settings.data_dir / "kg-imports" / f"{sha256[:24]}-{client}.json"


def _load_state(path: Path, sha256: str, client_id: str, explicit: bool) -> Any:
    from aia_engine.graph.imports import ImportState

    try:
        state = ImportState.from_json(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"state file {path} cannot be read ({exc}); delete it or run with --no-resume"
        ) from exc
    if state.sha256 != sha256 or state.client_id != client_id:
        if explicit:
            raise RuntimeError(
                f"state file {path} belongs to another file or client (the file changed since?); "
                "give another --state-file, or --no-resume to import the whole file again"
            )
        return None
    return state


def _save_state(path: Path, state: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.to_json(), "utf-8")
    os.replace(tmp, path)


def _totals(before: dict[str, Any], run: Any) -> dict[str, Any]:
    """The state's totals over every run of this import."""
    now = run.to_dict()
    out: dict[str, Any] = {}
    for key in ("rows", "created", "updated", "unchanged", "events"):
        out[key] = int(before.get(key, 0)) + now[key]
    lines = list(before.get("error_lines", [])) + now["error_lines"]
    out["errors"] = int(before.get("errors", 0)) + now["errors"]
    out["error_lines"] = lines[:1000]
    return out


def _start_state(args: argparse.Namespace, state_path: Path, sha256: str) -> Any:
    """The state to go on from (a new one unless resuming), saved once to check it can be."""
    from aia_engine.graph.imports import ImportState

    state = None
    if args.resume and state_path.exists():
        state = _load_state(state_path, sha256, args.client, args.state_file is not None)
    if state is not None:
        return state
    state = ImportState(sha256, args.client)
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        _save_state(state_path, state)
    except OSError as exc:
        raise RuntimeError(
            f"cannot write the state file {state_path} ({exc.strerror}); give --state-file"
        ) from exc
    return state


def _queue_embeddings(settings: Settings, client_id: str, nodes_written: int) -> None:
    """Ask the embedding workers for the imported nodes now (best effort: without a broker,
    beat's sweep finds them pending within AIA_SEARCH_EMBED_STALE_S)."""
    if not (settings.redis_url and nodes_written):
        return
    try:
        from workers.app import use_redis
        from workers.dispatch import send_embeddings

        send_embeddings(use_redis(settings.redis_url), [client_id])
    except Exception:  # the import has committed; indexing catches up through the sweep
        return


def cmd_kg_import(args: argparse.Namespace) -> int:
    from aia_engine.graph import imports

    path: Path = args.file
    if args.chunk_size < 1:
        raise RuntimeError("--chunk-size must be at least 1")
    if args.max_chunks is not None and args.max_chunks < 1:
        raise RuntimeError("--max-chunks must be at least 1")
    if not path.exists():
        raise RuntimeError(f"{path}: no such file")
    fmt = imports.detect_format(path, args.format)
    info = imports.inspect_file(path, fmt)  # checksum, UTF-8, before touching the database
    if fmt == "csv":
        next(imports.read_rows(path, fmt), None)  # the header is checked before any write
    settings = _settings()
    state_path: Path = args.state_file or default_state_file(settings, info.sha256, args.client)
    with _database():
        sessions = _sessions(settings)
        imports.require_client(sessions, args.client)
        state = _start_state(args, state_path, info.sha256)
        if state.finished:
            return _already(path, state, state_path, args.json)
        before = dict(state.totals)
        show = sys.stderr.isatty() if args.progress is None else args.progress
        bar = ImportBar(sys.stderr, info.rows) if show else None
        seen = {"rows": state.done["node"] + state.done["relationship"], "errors": 0}
        if bar:
            bar.update(seen["rows"], 0)

        def on_chunk(chunk: imports.ChunkResult) -> None:
            seen["rows"] += chunk.rows
            seen["errors"] += len(chunk.errors)
            _save_state(state_path, state)
            if bar:
                bar.update(seen["rows"], seen["errors"])

        summary = imports.import_file(
            sessions,
            args.client,
            path,
            fmt=fmt,
            state=state,
            chunk_size=args.chunk_size,
            on_chunk=on_chunk,
            max_chunks=args.max_chunks,
        )
        if bar:
            bar.close()
        state.totals = _totals(before, summary)
        _save_state(state_path, state)
    _queue_embeddings(settings, args.client, summary.nodes_created + summary.nodes_updated)
    _report(path, args.client, summary, state, state_path, args.json)
    if summary.interrupted:
        return 130
    if summary.stopped:
        return STOPPED
    return 1 if summary.errors else 0


def _report(
    path: Path, client: str, summary: Any, state: Any, state_path: Path, as_json: bool
) -> None:
    if as_json:
        print(json.dumps({**summary.to_dict(), "finished": state.finished,
                          "state_file": str(state_path)}, indent=2))  # fmt: skip
        return
    rate = summary.rows / summary.elapsed_s if summary.elapsed_s else 0.0
    print(
        f"{path} -> client {client}: {summary.rows} rows in {summary.elapsed_s:.1f}s "
        f"({rate:,.0f} rows/s): {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {len(summary.errors)} errors "
        f"(nodes {summary.nodes_created}/{summary.nodes_updated}/{summary.nodes_unchanged}, "
        f"relationships {summary.relationships_added}/{summary.relationships_updated}/"
        f"{summary.relationships_unchanged} created/updated/unchanged; "
        f"{summary.events} events)"
    )
    if summary.skipped:
        print(f"resumed: {summary.skipped} rows were imported by an earlier run")
    limit = 50
    for number, message in sorted(summary.errors)[:limit]:
        print(f"  line {number}: {message}")
    if len(summary.errors) > limit:
        print(f"  ... and {len(summary.errors) - limit} more errors (--json lists them all)")
    if summary.interrupted:
        print("interrupted: committed chunks are kept; run the same command again to resume")
    elif summary.stopped:
        print(f"stopped after {summary.chunks} chunks (--max-chunks); run the same command again "
              "to continue")  # fmt: skip


def _already(path: Path, state: Any, state_path: Path, as_json: bool) -> int:
    totals = state.totals
    if as_json:
        print(json.dumps({"already_imported": True, "state_file": str(state_path), **totals}))
    else:
        print(
            f"{path} was already imported into client {state.client_id} "
            f"({totals.get('rows', 0)} rows: {totals.get('created', 0)} created, "
            f"{totals.get('updated', 0)} updated, {totals.get('unchanged', 0)} unchanged, "
            f"{totals.get('errors', 0)} errors); nothing to do. State file: {state_path}; "
            "--no-resume imports the whole file again (unchanged rows write nothing)"
        )
        for item in totals.get("error_lines", [])[:50]:
            print(f"  line {item['line']}: {item['message']}")
    return 1 if totals.get("errors") else 0


def cmd_kg_export(args: argparse.Namespace) -> int:
    from aia_engine.graph import exports, imports

    fmt = args.format or (
        "csv" if args.output and args.output.suffix.lower() == ".csv" else "jsonl"
    )
    write = exports.write_csv if fmt == "csv" else exports.write_jsonl
    settings = _settings()
    with _database():
        sessions = _sessions(settings)
        imports.require_client(sessions, args.client)
        if args.output is None:
            count = write(sessions, args.client, sys.stdout)
            sys.stdout.flush()
            return 0
        try:
            handle = args.output.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise RuntimeError(f"{args.output}: cannot write ({exc.strerror})") from exc
        with handle:
            count = write(sessions, args.client, handle)
    print(f"exported {count} items of client {args.client}'s graph to {args.output} ({fmt})",
          file=sys.stderr)  # fmt: skip
    return 0
