"""Revoked refresh-token families: an index for each API process's periodic reload

Every API process asks, every AIA_REVOCATION_POLL_S seconds, which families were revoked within
the last access-token lifetime; a partial index on `revoked_at` keeps that a short index scan
however many refresh tokens accumulate (only revoked rows are in it).

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_refresh_tokens_revoked_at",
        "refresh_tokens",
        ["revoked_at"],
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_revoked_at", table_name="refresh_tokens")
