"""Stage functions live in .sql files: a table records which version of each file is applied

From here on `aia_claim_stage` and `aia_complete_stage` are not typed in migrations: they live
in `aia_engine/stages/sql/*.sql` and `aia_engine.db.repeatable` applies a file, after the
migrations of an upgrade to head, whenever its checksum is not the one recorded in
`aia_sql_files` (see that module for why). This revision only creates the table; the first
upgrade to head that passes it applies the files (which differ from 0014's functions in one
point: the completion leaves a task that has already ended to the Python executor).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aia_sql_files",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("checksum", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )


def downgrade() -> None:
    previous = importlib.import_module("aia_engine.db.migrations.versions.0014_event_progress")
    op.execute(previous.CLAIM)
    op.execute(previous.COMPLETE)
    op.drop_table("aia_sql_files")
