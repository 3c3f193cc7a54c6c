"""Every migration goes down and up again on a real PostgreSQL, and the schema it leaves is the
same as a fresh upgrade's."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
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
