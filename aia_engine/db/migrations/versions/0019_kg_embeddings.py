"""Embeddings of knowledge-graph entities (semantic search)

- `kg_embeddings`: one row per node that has been written since (the row goes with its node,
  ON DELETE CASCADE): its status (`pending` until a worker embedded its current text,
  `embedded`, or `failed` after AIA_SEARCH_EMBED_MAX_ATTEMPTS tries), the model and the hash
  of the text its vector was made from, the vector as `real[]`, `requested` (the graph version
  that last asked for it) and `seq` (the client's embedding version that stored the vector, so
  an in-process vector cache catches up by reading only newer rows).
- `kg_embedding_state`: one row per client, its embedding version (one more per stored batch)
  and `busy_until` (a task is embedding the client's entities; the sweep leaves it alone).
- Nodes that exist get a `pending` row, so an upgraded graph is indexed in the background.
- Where the `vector` extension can be created (the embedded PostgreSQL of `aia-engine dev`
  ships pgvector; a plain PostgreSQL 15 has none), a `vec vector(384)` copy of each vector and
  an HNSW index on it (cosine). Elsewhere nothing more: search scans `real[]` with numpy. The
  attempt runs in a savepoint, so a server without the extension migrates all the same.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DIMENSIONS = 384


def _try(sql: str) -> bool:
    """Run `sql` in a savepoint; False (and nothing done) when the server refuses it."""
    conn = op.get_bind()
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def upgrade() -> None:
    op.create_table(
        "kg_embeddings",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("node_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("text_hash", sa.Text(), nullable=True),
        sa.Column("embedding", sa.ARRAY(sa.REAL()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requested", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.ForeignKeyConstraint(
            ["client_id", "node_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_embeddings_node", ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'embedded', 'failed')", name="ck_kg_embeddings_status"
        ),
    )  # fmt: skip
    op.create_index("ix_kg_embeddings_client_seq", "kg_embeddings", ["client_id", "seq"])
    op.create_index("ix_kg_embeddings_model", "kg_embeddings", ["model", "client_id"])
    op.create_index(
        "ix_kg_embeddings_pending", "kg_embeddings", ["updated_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )  # fmt: skip
    op.create_table(
        "kg_embedding_state",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=True),
    )
    # Nodes written before this migration wait for their vectors like new ones (the sweep
    # queues them once they are AIA_SEARCH_EMBED_STALE_S old).
    op.execute(
        "INSERT INTO kg_embeddings (client_id, node_id, status, requested) "
        "SELECT client_id, node_id, 'pending', version FROM kg_nodes"
    )
    created = _try("CREATE EXTENSION IF NOT EXISTS vector")
    if not created:
        logging.getLogger("alembic.runtime.migration").warning(
            "the pgvector extension could not be created here (not installed, or no privilege): "
            "semantic search uses the exact numpy path (docs/semantic-search.md)"
        )
    if created:
        op.execute(f"ALTER TABLE kg_embeddings ADD COLUMN vec vector({DIMENSIONS})")
        op.execute(
            "CREATE INDEX ix_kg_embeddings_vec ON kg_embeddings "
            "USING hnsw (vec vector_cosine_ops)"
        )


def downgrade() -> None:
    op.drop_table("kg_embedding_state")
    op.drop_table("kg_embeddings")
    # Only when nothing else uses it (RESTRICT): an extension another table needs stays.
    _try("DROP EXTENSION IF EXISTS vector")
