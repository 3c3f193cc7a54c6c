"""Event delivery: stream positions on task events, webhook deliveries and attempts, alerts

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSONB = postgresql.JSONB(astext_type=sa.Text())
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # `pos` is the event's place in the published stream, given by the event pump in commit
    # order (ids come from a sequence and can commit out of order). NULL = not yet published.
    op.execute("CREATE SEQUENCE task_events_pos_seq")
    op.add_column("task_events", sa.Column("pos", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_task_events_unpumped", "task_events", ["id"], postgresql_where=sa.text("pos IS NULL")
    )
    op.create_index(
        "ix_task_events_pos", "task_events", ["pos"], unique=True,
        postgresql_where=sa.text("pos IS NOT NULL"),
    )  # fmt: skip
    op.create_index("ix_task_events_task_pos", "task_events", ["task_id", "pos"])

    op.add_column("webhooks", sa.Column("failing_since", TS, nullable=True))
    op.add_column("webhooks", sa.Column("last_success_at", TS, nullable=True))
    op.add_column(
        "webhooks", sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_index(
        "ix_webhooks_active_client", "webhooks", ["client_id"], postgresql_where=sa.text("active")
    )

    op.create_table(
        "system_alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("alert_type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "webhook_id", sa.String(64), sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),  # fmt: skip
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "created_at"])
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )  # fmt: skip

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id", sa.String(40),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False,
        ),  # fmt: skip
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "attempt"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("system_alerts")
    op.drop_index("ix_webhooks_active_client", table_name="webhooks")
    for column in ("consecutive_failures", "last_success_at", "failing_since"):
        op.drop_column("webhooks", column)
    op.drop_index("ix_task_events_task_pos", table_name="task_events")
    op.drop_index("ix_task_events_pos", table_name="task_events")
    op.drop_index("ix_task_events_unpumped", table_name="task_events")
    op.drop_column("task_events", "pos")
    op.execute("DROP SEQUENCE task_events_pos_seq")
