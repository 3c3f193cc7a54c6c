"""Task ends are announced: NOTIFY aia_task_ended '<task id> <status>'

A trigger on `tasks` (not each code path that ends a task) sends it, so every way a task
ends is covered: the stage fast path, the Python runner, cancellation, the reconciler. The
notification is sent at commit; `aia_engine.tasks.wait` listens for it, so waiting for a task
costs no polling.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION aia_notify_task_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aia_task_ended', NEW.id || ' ' || NEW.status);
    RETURN NULL;
END
$$;
"""

TRIGGER = r"""
CREATE TRIGGER aia_task_ended
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION aia_notify_task_ended();
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS aia_task_ended ON tasks")
    op.execute("DROP FUNCTION IF EXISTS aia_notify_task_ended()")
