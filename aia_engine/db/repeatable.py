"""Repeatable SQL: server-side functions live in `.sql` files and are applied when they change.

The stage functions (`aia_engine/stages/sql/*.sql`, `CREATE OR REPLACE FUNCTION ...`) used to
be re-typed in full in each migration that changed them (0004, 0009, 0010, 0014), so a change
was a copy of the whole function and the text that ran was spread over four files. Now the
file is the one place, and a change to it is one diff. How it reaches every database, like
Flyway's repeatable migrations:

* Versioned migrations (Alembic) run first and never load these files: a migration that ran
  on old databases must not start meaning something else when a file is edited later.
* Then, whenever an upgrade leaves the database at the head revision (`env.py` calls
  `apply_changed` in the same transaction, so it covers `aia-engine migrate`, the Procfile's
  release and a plain `alembic upgrade head` alike), each file whose SHA-256 differs from the
  one recorded in `aia_sql_files` (table made by migration 0015) is executed and recorded.
  An upgrade from any revision and a fresh database therefore end with the same functions:
  the files' (tests/integration/test_migrations.py checks both).
* A downgrade below 0015 drops the table and puts back 0014's functions; upgrading again
  re-applies the files.

Why not file names carrying a version that each migration names (`claim_stage_v5.sql`)? A
change would again be a copy of the whole function plus a migration, which is what we are
leaving. The one rule this design asks: a function whose signature (arguments or return type)
changes needs a migration that drops the old one and deletes its row from `aia_sql_files`, so
the file is applied afresh after it.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from sqlalchemy import Connection, text

TABLE = "aia_sql_files"
# Packages holding an `sql/` directory of repeatable files, applied in this order, each
# directory's files by name. Named by string: the database layer does not import them.
PACKAGES = ("aia_engine.stages",)


def sql_files() -> dict[str, str]:
    """Every repeatable file: `package/name.sql` -> its text."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        folder = resources.files(package) / "sql"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                found[f"{package}/{entry.name}"] = entry.read_text(encoding="utf-8")
    return found


def checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def apply_changed(conn: Connection) -> list[str]:
    """Execute each file whose checksum is not the recorded one; the names applied."""
    rows = conn.execute(text(f"SELECT name, checksum FROM {TABLE}"))
    recorded: dict[str, str] = {str(row[0]): str(row[1]) for row in rows}
    applied = []
    for name, body in sql_files().items():
        digest = checksum(body)
        if recorded.get(name) == digest:
            continue
        conn.execute(text(body))  # as Alembic's op.execute runs it (`::` casts are not binds)
        conn.execute(
            text(
                f"INSERT INTO {TABLE} (name, checksum) VALUES (:n, :c) "
                "ON CONFLICT (name) DO UPDATE SET checksum = :c, applied_at = now()"
            ),
            {"n": name, "c": digest},
        )
        applied.append(name)
    return applied
