"""Let frequent task updates (event counter, progress, updated_at) be HOT updates

The partial index on (status, updated_at) was touched by every event; an index on status alone
(still partial to active tasks) serves the reconciler and leaves updated_at unindexed.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('accepted', 'queued', 'in_progress')")


def upgrade() -> None:
    op.drop_index("ix_tasks_active", table_name="tasks")
    op.create_index("ix_tasks_active", "tasks", ["status"], postgresql_where=ACTIVE)
    # Room on each page for HOT updates of the rows that change many times in their life.
    op.execute("ALTER TABLE tasks SET (fillfactor = 70)")
    op.execute("ALTER TABLE stage_runs SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE tasks RESET (fillfactor)")
    op.execute("ALTER TABLE stage_runs RESET (fillfactor)")
    op.drop_index("ix_tasks_active", table_name="tasks")
    op.create_index("ix_tasks_active", "tasks", ["status", "updated_at"], postgresql_where=ACTIVE)
