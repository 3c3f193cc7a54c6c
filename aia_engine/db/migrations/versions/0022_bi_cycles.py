"""Business optimization cycles: `bi_cycles`, one row per POST /business-intelligence/execute-cycle

- `optimization_id` (`opt_` + the task's hex id), the client, the task running the cycle's
  workflow (status, stages and the plan are the task's), the validated request, created_at.
- `ix_bi_cycles_client_created`: the daily quota counts a client's cycles of the last 24 hours
  (AIA_BI_CYCLES_PER_DAY), and the list pages by it.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bi_cycles",
        sa.Column("optimization_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column(
            "task_id",
            sa.String(64),
            sa.ForeignKey("tasks.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("request", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_bi_cycles_client_created", "bi_cycles", ["client_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_bi_cycles_client_created", table_name="bi_cycles")
    op.drop_table("bi_cycles")
