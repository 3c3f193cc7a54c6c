"""Stage errors stored with a borrowed API code get their own

An agent crash was recorded as E013 and a skipped stage as E012, codes the API answers for
"too many active tasks" and "too many open event streams". They are now E022 (AgentCrashed)
and E023 (StageSkipped), and this revision relabels the stage and task errors already stored,
so a task reads the same whenever it ran and /errors/{code} describes what its error says.
Each pair is told apart without guessing: a skip is the only stored E012 (its type is
StageSkipped), and a stored E013 is a crash unless its type is QuotaExceeded, which no stage
records. Only `code` changes; `updated_at` is left alone (nothing happened to the task).

The event log (`task_events`) keeps the codes its events were published and delivered with:
it is the record of what streams and webhooks said at the time.

The downgrade relabels them back, exactly: E022 and E023 were never written before.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (old code, new code, the test on `error->>'type'` that picks the rows to relabel)
RELABELS = [
    ("E013", "E022", "IS DISTINCT FROM 'QuotaExceeded'"),
    ("E012", "E023", "= 'StageSkipped'"),
]
TABLES = ("stage_runs", "tasks")


def _relabel(table: str, old: str, new: str, type_test: str | None) -> None:
    only = f" AND (error->>'type') {type_test}" if type_test else ""
    op.execute(
        f"UPDATE {table} SET error = jsonb_set(error, '{{code}}', '\"{new}\"') "
        f"WHERE error->>'code' = '{old}'{only}"
    )


def upgrade() -> None:
    for table in TABLES:
        for old, new, type_test in RELABELS:
            _relabel(table, old, new, type_test)


def downgrade() -> None:
    for table in TABLES:
        for old, new, _ in RELABELS:
            _relabel(table, new, old, None)
