"""The knowledge graph: each client's nodes and relationships, a version per graph, and graph
changes in the event log

- `kg_graphs`: one row per client that has a graph; `version` grows by one with every write
  (a request, an import chunk, an agent's stage), under this row's lock, so writes to one graph
  are serialized and a cached copy knows exactly how far behind it is.
- `kg_nodes` / `kg_relationships`: the rows, each stamped with the `version` that last wrote
  it; a relationship's ends are nodes of the same client (deleting a node deletes them).
- `kg_tombstones`: what a version deleted, so a cache catches up by reading the rows and
  tombstones newer than its version instead of reloading the graph.
- `task_events` carries graph changes too: `task_id` is NULL and `client_id` names the owner
  (the same pump, positions, replay, streams and webhook fan-out as task events).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "kg_graphs",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("nodes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("relationships", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tombstones_from", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_table(
        "kg_nodes",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("node_id", sa.String(200), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("properties", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_index("ix_kg_nodes_client_version", "kg_nodes", ["client_id", "version"])
    op.create_index("ix_kg_nodes_client_type", "kg_nodes", ["client_id", "type"])
    op.create_table(
        "kg_relationships",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("relationship_id", sa.String(200), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=False),
        sa.Column("properties", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.ForeignKeyConstraint(
            ["client_id", "source_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_relationships_source", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id", "target_id"], ["kg_nodes.client_id", "kg_nodes.node_id"],
            name="fk_kg_relationships_target", ondelete="CASCADE",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_kg_relationships_client_version", "kg_relationships", ["client_id", "version"]
    )
    op.create_index(
        "ix_kg_relationships_source", "kg_relationships", ["client_id", "source_id"]
    )
    op.create_index(
        "ix_kg_relationships_target", "kg_relationships", ["client_id", "target_id"]
    )
    op.create_table(
        "kg_tombstones",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.CheckConstraint("kind IN ('node', 'relationship')", name="ck_kg_tombstones_kind"),
    )
    op.create_index("ix_kg_tombstones_client_version", "kg_tombstones", ["client_id", "version"])

    op.alter_column("task_events", "task_id", nullable=True)
    op.add_column("task_events", sa.Column("client_id", sa.String(128), nullable=True))
    op.create_check_constraint(
        "ck_task_events_owner", "task_events", "task_id IS NOT NULL OR client_id IS NOT NULL"
    )
    op.create_index(
        "ix_task_events_client_pos", "task_events", ["client_id", "pos"],
        postgresql_where=sa.text("task_id IS NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_task_events_client_pos", table_name="task_events")
    op.execute("DELETE FROM task_events WHERE task_id IS NULL")
    op.drop_constraint("ck_task_events_owner", "task_events", type_="check")
    op.drop_column("task_events", "client_id")
    op.alter_column("task_events", "task_id", nullable=False)
    op.drop_table("kg_tombstones")
    op.drop_table("kg_relationships")
    op.drop_table("kg_nodes")
    op.drop_table("kg_graphs")
