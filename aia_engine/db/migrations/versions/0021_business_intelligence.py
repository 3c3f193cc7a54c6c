"""Business intelligence: health history, per-client request durations, dashboard indexes

- `health_samples`: one row a minute written by the beat process (the engine's health check:
  PostgreSQL, Redis, workers), pruned past AIA_BI_HISTORY_KEEP_DAYS; the dashboard's uptime.
- `api_request_stats`: per client and minute, the requests the API answered and their summed
  duration in milliseconds (upserted by each API process's periodic flush); the dashboard's
  mean response time.
- `ix_kg_relationships_client_type`: the dashboard reads one client's PURCHASED relationships.
- `ix_tasks_client_finished`: the dashboard reads one client's tasks finished in a window.

Revision ID: 0021
Revises: 0020 (set to 0019 on the bi-dashboard branch until 0020 is merged)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_samples",
        sa.Column("sampled_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("services", sa.dialects.postgresql.JSONB(), nullable=False),
    )
    op.create_table(
        "api_request_stats",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_api_request_stats_minute", "api_request_stats", ["minute"])
    op.create_index("ix_kg_relationships_client_type", "kg_relationships", ["client_id", "type"])
    op.create_index("ix_tasks_client_finished", "tasks", ["client_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_client_finished", table_name="tasks")
    op.drop_index("ix_kg_relationships_client_type", table_name="kg_relationships")
    op.drop_table("api_request_stats")
    op.drop_table("health_samples")
