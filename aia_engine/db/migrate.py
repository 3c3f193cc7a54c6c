"""Apply Alembic migrations programmatically (`aia-engine migrate`, the Procfile's release)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from aia_engine.db.session import make_engine
from aia_engine.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Several processes may start at once (`dev`, tests, replicas): serialise their migrations.
_LOCK_KEY = 0x41_49_41_4D  # "AIAM"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    engine = make_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            try:
                command.upgrade(alembic_config(settings.require_database_url()), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    finally:
        engine.dispose()
