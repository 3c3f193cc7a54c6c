"""Stages end: a count of lost runs per stage; the fast-path claim leaves lost runs to Python

`stage_runs.redispatches` counts the runs of a stage that ended without recording an outcome
(its worker process died, its lease ran out) and were made again; past
AIA_MAX_STAGE_REDISPATCHES the stage fails as lost (E021) instead of looping. `aia_claim_stage`
is 0009's, except that a stage found `running` (a redelivery after such a run) answers 'slow',
so the Python runner, which counts and caps, decides.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CLAIM = r"""
CREATE OR REPLACE FUNCTION aia_claim_stage(
    p_task text, p_stage text, p_celery text, p_default_timeout double precision, p_grace double precision
) RETURNS TABLE (outcome text, attempt integer, task_row jsonb, inputs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t_status text; t_seq integer; t_stage jsonb; t_req jsonb; t_ctx jsonb; t_desc text;
    s stage_runs%ROWTYPE;
    now_ timestamptz := clock_timestamp();
    open_deps integer;
    not_done integer;
    dep_outputs jsonb;
    timeout_s double precision;
    starting boolean;
BEGIN
    SELECT t.status, t.event_seq, t.workflow -> p_stage, t.requirements, t.context, t.description
      INTO t_status, t_seq, t_stage, t_req, t_ctx, t_desc
      FROM tasks t WHERE t.id = p_task FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'missing'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    SELECT * INTO s FROM stage_runs WHERE task_id = p_task AND name = p_stage;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'missing'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF s.status IN ('completed', 'failed', 'skipped', 'cancelled') THEN
        RETURN QUERY SELECT 'ended'::text, s.attempt, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF t_status = 'cancelled' THEN
        RETURN QUERY SELECT 'slow'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF s.status = 'running' AND s.celery_id IS DISTINCT FROM p_celery AND s.lease_until > now_ THEN
        RETURN QUERY SELECT 'held'::text, s.attempt, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF s.status = 'running' THEN
        -- An earlier run recorded no outcome (its process died, its lease ran out): the Python
        -- runner counts the loss and fails the stage as lost past AIA_MAX_STAGE_REDISPATCHES.
        RETURN QUERY SELECT 'slow'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE d.status NOT IN ('completed', 'failed', 'skipped', 'cancelled')),
           count(*) FILTER (WHERE d.status <> 'completed'),
           coalesce(jsonb_object_agg(d.name, d.output), '{}'::jsonb)
      INTO open_deps, not_done, dep_outputs
      FROM stage_runs d
     WHERE d.task_id = p_task AND d.name IN (SELECT jsonb_array_elements_text(s.dependencies));
    IF open_deps > 0 THEN
        RETURN QUERY SELECT 'wait'::text, s.attempt, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF not_done > 0 THEN
        RETURN QUERY SELECT 'slow'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    timeout_s := coalesce((t_stage ->> 'timeout_s')::double precision, p_default_timeout);
    UPDATE stage_runs
       SET status = 'running', attempt = stage_runs.attempt + 1, celery_id = p_celery,
           lease_until = now_ + make_interval(secs => timeout_s + p_grace),
           started_at = coalesce(started_at, now_), updated_at = now_, progress = 0
     WHERE id = s.id;
    starting := t_status IN ('accepted', 'queued');
    IF starting THEN
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
        VALUES (p_task, t_seq + 1, 'task.started', NULL, '{}'::jsonb, now_),
               (p_task, t_seq + 2, 'stage.started', p_stage,
                jsonb_build_object('attempt', s.attempt + 1, 'agent', s.agent), now_);
        UPDATE tasks SET status = 'in_progress', started_at = now_, event_seq = t_seq + 2, updated_at = now_
         WHERE id = p_task;
    ELSE
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
        VALUES (p_task, t_seq + 1, 'stage.started', p_stage,
                jsonb_build_object('attempt', s.attempt + 1, 'agent', s.agent), now_);
        UPDATE tasks SET event_seq = t_seq + 1, updated_at = now_ WHERE id = p_task;
    END IF;
    RETURN QUERY SELECT
        'claimed'::text,
        s.attempt + 1,
        jsonb_build_object('stage', t_stage, 'requirements', t_req, 'context', t_ctx, 'description', t_desc),
        dep_outputs;
END
$$;
"""


def upgrade() -> None:
    op.add_column(
        "stage_runs",
        sa.Column("redispatches", sa.Integer(), server_default="0", nullable=False),
    )
    op.execute(CLAIM)


def downgrade() -> None:
    previous = importlib.import_module(
        "aia_engine.db.migrations.versions.0009_leaner_stage_fast_path"
    )
    op.execute(previous.CLAIM)
    op.drop_column("stage_runs", "redispatches")
