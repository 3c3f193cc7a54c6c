"""Alembic environment: the URL comes from the Config (set by `aia_engine.db.migrate`)."""

from __future__ import annotations

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from aia_engine.db.models import Base
from aia_engine.db.repeatable import apply_changed

config = context.config
target_metadata = Base.metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate leaves alone what no model describes on purpose: the repeatable files'
    checksums (aia_engine/db/repeatable.py)."""
    return not (type_ == "table" and name == "aia_sql_files")


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        include_object=include_object,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_object=include_object
        )
        with context.begin_transaction():
            context.run_migrations()
            # Repeatable SQL files after the versioned migrations, only at the head revision
            # (not after a downgrade): see aia_engine/db/repeatable.py.
            head = ScriptDirectory.from_config(config).get_current_head()
            if context.get_context().get_current_revision() == head:
                apply_changed(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
