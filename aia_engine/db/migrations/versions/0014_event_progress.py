"""Each event records the task's progress at the moment it was written

`task_events.progress` is the task's progress right after the change the event records (what
`GET /tasks/{id}` said once that change committed). Streams and webhook bodies show it instead
of the task's progress at the time the event pump renders the event, which is often later
(a `task.accepted` rendered after the task finished said 100). Rows written before this
revision have NULL and are rendered as before. The stage fast path records it too: the claim
is 0010's and the completion 0009's, with the progress column filled.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CLAIM = r"""
CREATE OR REPLACE FUNCTION aia_claim_stage(
    p_task text, p_stage text, p_celery text, p_default_timeout double precision, p_grace double precision
) RETURNS TABLE (outcome text, attempt integer, task_row jsonb, inputs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t_status text; t_seq integer; t_stage jsonb; t_req jsonb; t_ctx jsonb; t_desc text;
    t_progress double precision;
    s stage_runs%ROWTYPE;
    now_ timestamptz := clock_timestamp();
    open_deps integer;
    not_done integer;
    dep_outputs jsonb;
    timeout_s double precision;
    starting boolean;
BEGIN
    SELECT t.status, t.event_seq, t.workflow -> p_stage, t.requirements, t.context, t.description,
           t.progress
      INTO t_status, t_seq, t_stage, t_req, t_ctx, t_desc, t_progress
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
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at, progress)
        VALUES (p_task, t_seq + 1, 'task.started', NULL, '{}'::jsonb, now_, t_progress),
               (p_task, t_seq + 2, 'stage.started', p_stage,
                jsonb_build_object('attempt', s.attempt + 1, 'agent', s.agent), now_, t_progress);
        UPDATE tasks SET status = 'in_progress', started_at = now_, event_seq = t_seq + 2, updated_at = now_
         WHERE id = p_task;
    ELSE
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at, progress)
        VALUES (p_task, t_seq + 1, 'stage.started', p_stage,
                jsonb_build_object('attempt', s.attempt + 1, 'agent', s.agent), now_, t_progress);
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

COMPLETE = r"""
CREATE OR REPLACE FUNCTION aia_complete_stage(
    p_task text, p_stage text, p_celery text, p_output jsonb, p_duration double precision
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t_seq integer;
    s_id bigint;
    s_status text;
    s_celery text;
    s_attempt integer;
    now_ timestamptz := clock_timestamp();
    total integer;
    ended integer;
    failed integer;
    running_progress double precision;
    new_progress double precision;
    seq integer;
BEGIN
    SELECT event_seq INTO t_seq FROM tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    SELECT id, status, celery_id, attempt INTO s_id, s_status, s_celery, s_attempt
      FROM stage_runs WHERE task_id = p_task AND name = p_stage;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    IF s_status <> 'running' OR s_celery IS DISTINCT FROM p_celery THEN
        RETURN 'superseded';
    END IF;
    -- The other stages, as they will be once this one has completed.
    SELECT count(*) + 1,
           count(*) FILTER (WHERE status IN ('completed', 'failed', 'skipped', 'cancelled')) + 1,
           count(*) FILTER (WHERE status = 'failed'),
           coalesce(sum(progress / 100.0) FILTER (WHERE status = 'running'), 0)
      INTO total, ended, failed, running_progress
      FROM stage_runs WHERE task_id = p_task AND id <> s_id;
    IF ended = total AND failed > 0 THEN
        RETURN 'slow';  -- the workflow ends with failures: the Python runner settles it
    END IF;
    UPDATE stage_runs
       SET status = 'completed', output = p_output, error = NULL, progress = 100,
           finished_at = now_, updated_at = now_, lease_until = NULL
     WHERE id = s_id;
    seq := t_seq + 1;
    IF ended = total THEN
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at, progress)
        VALUES (p_task, seq, 'stage.completed', p_stage,
                jsonb_build_object('duration_s', round(p_duration::numeric, 4), 'attempt', s_attempt), now_, 100),
               (p_task, seq + 1, 'task.completed', NULL, jsonb_build_object('failed_stages', '[]'::jsonb), now_, 100);
        UPDATE tasks
           SET status = 'completed', progress = 100, error = NULL, finished_at = now_,
               results = (SELECT coalesce(jsonb_object_agg(name, output), '{}'::jsonb)
                            FROM stage_runs WHERE task_id = p_task AND status = 'completed'),
               event_seq = seq + 1, updated_at = now_
         WHERE id = p_task;
    ELSE
        new_progress := round((100.0 * (ended + running_progress) / total)::numeric, 1);
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at, progress)
        VALUES (p_task, seq, 'stage.completed', p_stage,
                jsonb_build_object('duration_s', round(p_duration::numeric, 4), 'attempt', s_attempt), now_,
                new_progress);
        UPDATE tasks
           SET progress = new_progress, event_seq = seq, updated_at = now_
         WHERE id = p_task;
    END IF;
    RETURN 'completed';
END
$$;
"""


def upgrade() -> None:
    op.add_column("task_events", sa.Column("progress", sa.Float(), nullable=True))
    op.execute(CLAIM)
    op.execute(COMPLETE)


def downgrade() -> None:
    claim = importlib.import_module("aia_engine.db.migrations.versions.0010_stage_redispatches")
    complete = importlib.import_module(
        "aia_engine.db.migrations.versions.0009_leaner_stage_fast_path"
    )
    op.execute(claim.CLAIM)
    op.execute(complete.COMPLETE)
    op.drop_column("task_events", "progress")
