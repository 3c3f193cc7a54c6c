"""Export of a client's knowledge graph, streamed from one snapshot (a server-side cursor in a
REPEATABLE READ transaction), in the formats `graph.imports` reads: exporting a graph and
importing the file into an empty graph gives the same nodes and relationships.

JSON Lines: every node (by node_id), then every relationship (by relationship_id), one object
per line. CSV: the header `kind,node_id,type,source,target,relationship_id`, one column per
property name found in the graph, then `properties`; a property value goes in its column when
it reads back as itself (text that does not look like a number, a number), otherwise (booleans,
null, arrays, objects, text such as "12", names that are the items' own fields) in the row's
`properties` cell as JSON."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy.orm import Session

from aia_engine.db.direct import in_session, sqlalchemy_errors
from aia_engine.db.session import Sessions
from aia_engine.graph.imports import CSV_FIELDS, CSV_PROPERTIES, NODE, RELATIONSHIP, csv_value

BATCH = 2000

_NODES = "SELECT node_id, type, properties FROM kg_nodes WHERE client_id = %s ORDER BY node_id"
_RELATIONSHIPS = (
    "SELECT relationship_id, type, source_id, target_id, properties FROM kg_relationships "
    "WHERE client_id = %s ORDER BY relationship_id"
)
_KEYS = """
SELECT k FROM (
  SELECT jsonb_object_keys(properties) AS k FROM kg_nodes WHERE client_id = %(c)s
  UNION SELECT jsonb_object_keys(properties) FROM kg_relationships WHERE client_id = %(c)s
) keys ORDER BY k
"""


def _snapshot(session: Session) -> None:
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    in_session(session).execute("SET TRANSACTION READ ONLY")


def _stream(session: Session, name: str, sql: str, client_id: str) -> Iterator[tuple[Any, ...]]:
    with in_session(session).cursor(name=name) as cur:
        cur.itersize = BATCH
        cur.execute(sql, (client_id,))
        yield from cur


def graph_items(sessions: Sessions, client_id: str) -> Iterator[dict[str, Any]]:
    """Every node, then every relationship, of the client's graph as import items."""
    with sessions() as session, sqlalchemy_errors():
        _snapshot(session)
        yield from _items(session, client_id)


def _items(session: Session, client_id: str) -> Iterator[dict[str, Any]]:
    for node_id, node_type, properties in _stream(session, "kg_export_nodes", _NODES, client_id):
        yield {"kind": NODE, "node_id": node_id, "type": node_type, "properties": properties}
    for rel_id, rel_type, source, target, properties in _stream(
        session, "kg_export_rels", _RELATIONSHIPS, client_id
    ):
        yield {"kind": RELATIONSHIP, "relationship_id": rel_id, "type": rel_type,
               "source": source, "target": target, "properties": properties}  # fmt: skip


def write_jsonl(sessions: Sessions, client_id: str, out: TextIO) -> int:
    """Write the graph as JSON Lines to `out`; the number of lines written."""
    count = 0
    for item in graph_items(sessions, client_id):
        out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def reads_back(value: Any) -> str | None:
    """The CSV cell for a property value when importing it gives the same value, else None."""
    if isinstance(value, str):
        return value if value and csv_value(value) == value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        cell = repr(value)
        back = csv_value(cell)
        return cell if isinstance(back, float) and back == value else None
    return None


def csv_row(item: dict[str, Any], columns: list[str]) -> list[str]:
    """One CSV record for an import item under the header `CSV_FIELDS + columns + properties`."""
    cells = {name: item.get(name, "") for name in CSV_FIELDS}
    rest: dict[str, Any] = {}
    for key, value in item["properties"].items():
        cell = reads_back(value) if key in columns else None
        if cell is None:
            rest[key] = value
        else:
            cells[key] = cell
    cells[CSV_PROPERTIES] = json.dumps(rest, ensure_ascii=False) if rest else ""
    return [cells.get(name, "") for name in (*CSV_FIELDS, *columns, CSV_PROPERTIES)]


def write_csv(sessions: Sessions, client_id: str, out: TextIO) -> int:
    """Write the graph as CSV to `out`; the number of records written (not the header)."""
    writer = csv.writer(out, lineterminator="\n")
    count = 0
    with sessions() as session, sqlalchemy_errors():
        _snapshot(session)
        keys = [row[0] for row in in_session(session).execute(_KEYS, {"c": client_id})]
        reserved = {*CSV_FIELDS, CSV_PROPERTIES}
        columns = [k for k in keys if k not in reserved and k == k.strip()]
        writer.writerow([*CSV_FIELDS, *columns, CSV_PROPERTIES])
        for item in _items(session, client_id):
            writer.writerow(csv_row(item, columns))
            count += 1
    return count
