"""Every migration goes down and up again on a real PostgreSQL, and the schema it leaves is the
same as a fresh upgrade's."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from aia_engine.db.migrate import alembic_config, upgrade
from aia_engine.db.repeatable import sql_files
from tests.integration.conftest import Services

SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'function ' || p.proname || ' ' || md5(p.prosrc)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""


@pytest.fixture
def scratch_db(services: Services) -> Iterator[str]:
    name = f"aia_migrations_{secrets.token_hex(4)}"
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(services.database_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def schema(url: str) -> list[str]:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        return [row[0] for row in conn.execute(SCHEMA).fetchall()]


def function_source(url: str, name: str) -> str:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def test_every_migration_goes_down_and_up_again(services: Services, scratch_db: str) -> None:
    settings = services.settings.model_copy(update={"database_url": scratch_db})
    upgrade(settings)
    fresh = schema(scratch_db)
    assert any(line.startswith("function aia_claim_stage") for line in fresh)
    assert "trigger aia_task_ended" in fresh
    config = alembic_config(scratch_db)
    # 0009's downgrade puts 0004's stage functions back.
    command.downgrade(config, "0008")
    assert "SELECT * INTO t FROM tasks" in function_source(scratch_db, "aia_claim_stage")
    command.downgrade(config, "base")
    assert not [line for line in schema(scratch_db) if "alembic_version" not in line]
    command.upgrade(config, "head")
    assert schema(scratch_db) == fresh


def test_0016_gives_stage_errors_stored_with_borrowed_api_codes_their_own(
    services: Services, scratch_db: str
) -> None:
    config = alembic_config(scratch_db)
    command.upgrade(config, "0014")
    plain = make_url(scratch_db).set(drivername="postgresql").render_as_string(hide_password=False)
    errors = {  # stage name: (error as stored before 0016, its code after)
        "crashed": ({"type": "ValueError", "code": "E013", "message": "m"}, "E022"),
        "skipped": ({"type": "StageSkipped", "code": "E012", "message": "m"}, "E023"),
        "quota": ({"type": "QuotaExceeded", "code": "E013", "message": "m"}, "E013"),
        "refused": ({"type": "AgentError", "code": "E010", "message": "m"}, "E010"),
    }
    with psycopg.connect(plain) as conn:
        conn.execute(
            "INSERT INTO tasks (id, client_id, task_type, description, priority, requirements,"
            " context, workflow, assigned_agents, status, progress, partial_results, error,"
            " event_seq, dispatch_count, updated_at)"
            " VALUES ('t1', 'c', 'x', '', 'medium', '{}', '{}', '{}', '[]', 'failed', 100, '{}',"
            " %s, 0, 0, '2020-01-01')",
            (Jsonb({**errors["crashed"][0], "stage": "crashed"}),),
        )
        for position, (name, (error, _)) in enumerate(errors.items()):
            conn.execute(
                "INSERT INTO stage_runs (task_id, name, agent, position, dependencies, status,"
                " attempt, max_attempts, progress, error) VALUES"
                " ('t1', %s, 'a', %s, '[]', 'failed', 1, 1, 0, %s)",
                (name, position, Jsonb(error)),
            )

    def codes() -> tuple[dict[str, str], str, str]:
        with psycopg.connect(plain) as conn:
            stages = dict(conn.execute("SELECT name, error->>'code' FROM stage_runs").fetchall())
            task = conn.execute("SELECT error->>'code', updated_at::text FROM tasks").fetchone()
        assert task is not None
        return stages, task[0], task[1]

    command.upgrade(config, "0016")
    stages, task_code, updated_at = codes()
    assert stages == {name: after for name, (_, after) in errors.items()}
    assert task_code == "E022" and updated_at.startswith("2020-01-01")
    command.downgrade(config, "0015")
    stages, task_code, _ = codes()
    assert stages == {name: error["code"] for name, (error, _) in errors.items()}
    assert task_code == "E013"


def test_an_upgrade_from_0014_and_a_fresh_database_end_with_the_files_functions(
    services: Services, scratch_db: str
) -> None:
    config = alembic_config(scratch_db)
    command.upgrade(config, "0014")  # a database as the last release left it
    old = function_source(scratch_db, "aia_complete_stage")
    assert "t_status" not in old
    command.upgrade(config, "head")
    upgraded = schema(scratch_db)
    command.downgrade(config, "base")
    settings = services.settings.model_copy(update={"database_url": scratch_db})
    upgrade(settings)
    assert schema(scratch_db) == upgraded
    files = sql_files()
    for name in ("aia_claim_stage", "aia_complete_stage"):
        body = function_source(scratch_db, name)
        assert any(body in text for text in files.values()), name


def test_an_edited_sql_file_is_applied_by_the_next_upgrade(
    services: Services, scratch_db: str
) -> None:
    settings = services.settings.model_copy(update={"database_url": scratch_db})
    upgrade(settings)
    plain = make_url(scratch_db).set(drivername="postgresql").render_as_string(hide_password=False)
    # As a database migrated before the file was edited: the old function, the old checksum.
    with psycopg.connect(plain) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION aia_complete_stage("
            "p_task text, p_stage text, p_celery text, p_output jsonb, p_duration double precision"
            ") RETURNS text LANGUAGE sql AS $$ SELECT 'stale' $$"
        )
        conn.execute(
            "UPDATE aia_sql_files SET checksum = 'before-the-edit'"
            " WHERE name LIKE '%complete_stage.sql'"
        )
    upgrade(settings)  # nothing to migrate; the edited file is applied
    assert "t_status" in function_source(scratch_db, "aia_complete_stage")
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT name FROM aia_sql_files ORDER BY name").fetchall()
    assert [r[0] for r in rows] == sorted(sql_files())


def test_0020_moves_dataset_records_into_rows_and_back(services: Services, scratch_db: str) -> None:
    config = alembic_config(scratch_db)
    command.upgrade(config, "0019")
    plain = make_url(scratch_db).set(drivername="postgresql").render_as_string(hide_password=False)
    records = [{"a": 1, "b": "x"}, {"a": 2.5, "c": None}, {"b": True, "d": [1]}]
    with psycopg.connect(plain) as conn:
        conn.execute(
            "INSERT INTO datasets (name, client_id, records, record_count, size_bytes, fields)"
            ' VALUES (\'old\', NULL, %s, 3, 60, \'["a", "b", "c", "d"]\')',
            (Jsonb(records),),
        )
    command.upgrade(config, "0020")
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT row_no, record FROM dataset_rows ORDER BY row_no").fetchall()
        found = conn.execute("SELECT public_id, schema, format FROM datasets").fetchone()
    assert rows == [(1, records[0]), (2, records[1]), (3, records[2])]
    assert found is not None and found[0].startswith("ds_") and len(found[0]) == 27
    assert found[1]["columns"] == [
        {"name": "a", "type": "number", "nulls": 1},
        {"name": "b", "type": "mixed", "nulls": 1},
        {"name": "c", "type": "null", "nulls": 3},
        {"name": "d", "type": "array", "nulls": 2},
    ]  # as aia_engine/datasets/schema.py infers it for new uploads
    assert found[2] == "records"
    command.downgrade(config, "0019")
    with psycopg.connect(plain) as conn:
        back = conn.execute("SELECT records FROM datasets").fetchone()
    assert back is not None and back[0] == records


def test_0020_moves_a_dataset_past_21474_records(services: Services, scratch_db: str) -> None:
    # row_no * 100000 once overflowed int at row 21,475 (the old cap was 100,000 records).
    config = alembic_config(scratch_db)
    command.upgrade(config, "0019")
    plain = make_url(scratch_db).set(drivername="postgresql").render_as_string(hide_password=False)
    records: list[dict[str, object]] = [{"n": i} for i in range(30_000)]
    records[-1] = {"n": 29_999, "late": "x"}  # a column first seen past the overflow
    with psycopg.connect(plain) as conn:
        conn.execute(
            "INSERT INTO datasets (name, client_id, records, record_count, size_bytes, fields)"
            " VALUES ('big', NULL, %s, 30000, 1, '[\"n\", \"late\"]')",
            (Jsonb(records),),
        )
    command.upgrade(config, "0020")
    with psycopg.connect(plain) as conn:
        count = conn.execute("SELECT count(*), max(row_no) FROM dataset_rows").fetchone()
        found = conn.execute("SELECT schema FROM datasets").fetchone()
    assert count == (30_000, 30_000)
    assert found is not None and found[0]["columns"] == [
        {"name": "n", "type": "integer", "nulls": 0},
        {"name": "late", "type": "string", "nulls": 29_999},
    ]
