"""Dataset rows: one row per record, streamed in with COPY

- `dataset_rows(dataset_id, row_no, record)`: a dataset's records, numbered from 1 in file
  order (PRIMARY KEY (dataset_id, row_no): workers read them in order with a server-side
  cursor), gone with their dataset (ON DELETE CASCADE).
- `datasets` gains `public_id` (`ds_` + 24 hex, unique: what the HTTP API and
  `requirements.dataset_id` name), `schema` (the columns in order, each with its inferred type
  and its count of nulls) and `format` (csv, jsonl, json, or `records` for rows moved here
  from before). Existing `records` arrays move into rows, their schema is inferred in SQL, and
  the column is dropped. A moved dataset's schema lists its columns in order of first
  appearance as PostgreSQL's jsonb holds an object's keys (shorter keys first, then
  bytewise), not in the order the original file wrote them: jsonb kept no other.
- The downgrade folds the rows back into `records` (one jsonb value per dataset: it fails for a
  dataset above jsonb's limit of about 255 MB) and drops the `ds_` ids, which an upgrade
  after it draws anew.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The type of one JSON value, as the schema names it (aia_engine/datasets/schema.py).
_KIND = """CASE jsonb_typeof(v)
    WHEN 'number' THEN CASE WHEN v::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'number' END
    ELSE jsonb_typeof(v) END"""


def upgrade() -> None:
    op.add_column("datasets", sa.Column("public_id", sa.String(27), nullable=True))
    op.add_column(
        "datasets",
        sa.Column("schema", postgresql.JSONB(), nullable=False, server_default='{"columns": []}'),
    )
    op.add_column(
        "datasets", sa.Column("format", sa.String(16), nullable=False, server_default="records")
    )
    op.execute(
        "UPDATE datasets SET public_id = 'ds_' || substr(md5(random()::text || id::text), 1, 24)"
    )
    op.alter_column("datasets", "public_id", nullable=False)
    op.create_unique_constraint("uq_datasets_public_id", "datasets", ["public_id"])
    op.create_table(
        "dataset_rows",
        sa.Column(
            "dataset_id",
            sa.BigInteger(),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("record", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "row_no"),
    )
    op.execute(
        """
        INSERT INTO dataset_rows (dataset_id, row_no, record)
        SELECT d.id, r.n, r.record
        FROM datasets d, jsonb_array_elements(d.records) WITH ORDINALITY AS r(record, n)
        """
    )
    # Schema of the moved rows: columns by first appearance, one type (or mixed), nulls.
    op.execute(
        f"""
        WITH cells AS (
            SELECT r.dataset_id, r.row_no, e.key, e.ord, {_KIND.replace("v", "e.value")} AS kind
            FROM dataset_rows r, jsonb_each(r.record) WITH ORDINALITY AS e(key, value, ord)
        ), cols AS (
            SELECT dataset_id, key,
                   min(row_no::bigint * 100000 + ord) AS first_seen,
                   count(*) FILTER (WHERE kind = 'null') AS explicit_nulls,
                   count(*) AS present,
                   array_agg(DISTINCT kind) FILTER (WHERE kind <> 'null') AS kinds
            FROM cells GROUP BY dataset_id, key
        )
        UPDATE datasets d SET schema = jsonb_build_object('columns', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'name', c.key,
                'type', CASE
                    WHEN c.kinds IS NULL THEN 'null'
                    WHEN cardinality(c.kinds) = 1 THEN c.kinds[1]
                    WHEN c.kinds <@ ARRAY['integer', 'number'] THEN 'number'
                    ELSE 'mixed' END,
                'nulls', c.explicit_nulls + d.record_count - c.present
            ) ORDER BY c.first_seen)
            FROM cols c WHERE c.dataset_id = d.id), '[]'::jsonb))
        """
    )
    op.drop_column("datasets", "records")


def downgrade() -> None:
    op.add_column(
        "datasets",
        sa.Column("records", postgresql.JSONB(), nullable=False, server_default="[]"),
    )
    op.execute(
        """
        UPDATE datasets d SET records = coalesce((
            SELECT jsonb_agg(r.record ORDER BY r.row_no)
            FROM dataset_rows r WHERE r.dataset_id = d.id), '[]'::jsonb)
        """
    )
    op.alter_column("datasets", "records", server_default=None)
    op.drop_table("dataset_rows")
    op.drop_constraint("uq_datasets_public_id", "datasets")
    op.drop_column("datasets", "format")
    op.drop_column("datasets", "schema")
    op.drop_column("datasets", "public_id")
