"""Idempotency-Key answers of knowledge-graph writes

`kg_idempotency` keeps, per client and key, which write a key was used for (`operation`, a
digest of the body) and the answer it got, so a repeat of the same request answers the same
without writing again, and a key reused for a different request is refused. Rows older than
AIA_KG_IDEMPOTENCY_HOURS are pruned by the client's next keyed write.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kg_idempotency",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("answer", JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
    )
    op.create_index("ix_kg_idempotency_client_created", "kg_idempotency", ["client_id", "created_at"])


def downgrade() -> None:
    op.drop_table("kg_idempotency")
