"""Server-side fast path for the stage lifecycle: claim and complete in one round trip each

`aia_claim_stage` and `aia_complete_stage` do, inside PostgreSQL, exactly what the Python
stage runner does in the common case (claim a ready stage; record a success), taking the same
locks in the same order. Anything unusual (a cancelled task, a failed or skipped dependency, a
workflow that ends with failures) answers 'slow' without changing anything, and the Python
runner, which remains the reference, handles it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CLAIM = r"""
CREATE OR REPLACE FUNCTION aia_claim_stage(
    p_task text, p_stage text, p_celery text, p_default_timeout double precision, p_grace double precision
) RETURNS TABLE (outcome text, attempt integer, task_row jsonb, inputs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    t tasks%ROWTYPE;
    s stage_runs%ROWTYPE;
    now_ timestamptz := clock_timestamp();
    open_deps integer;
    not_done integer;
    timeout_s double precision;
    seq integer;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = p_task FOR UPDATE;
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
    IF t.status = 'cancelled' THEN
        RETURN QUERY SELECT 'slow'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF s.status = 'running' AND s.celery_id IS DISTINCT FROM p_celery AND s.lease_until > now_ THEN
        RETURN QUERY SELECT 'held'::text, s.attempt, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE d.status NOT IN ('completed', 'failed', 'skipped', 'cancelled')),
           count(*) FILTER (WHERE d.status <> 'completed')
      INTO open_deps, not_done
      FROM stage_runs d
     WHERE d.task_id = p_task AND d.name IN (SELECT jsonb_array_elements_text(s.dependencies));
    IF open_deps > 0 THEN
        RETURN QUERY SELECT 'wait'::text, s.attempt, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    IF not_done > 0 THEN
        RETURN QUERY SELECT 'slow'::text, 0, NULL::jsonb, NULL::jsonb; RETURN;
    END IF;
    timeout_s := coalesce((t.workflow -> p_stage ->> 'timeout_s')::double precision, p_default_timeout);
    UPDATE stage_runs
       SET status = 'running', attempt = stage_runs.attempt + 1, celery_id = p_celery,
           lease_until = now_ + make_interval(secs => timeout_s + p_grace),
           started_at = coalesce(started_at, now_), updated_at = now_, progress = 0
     WHERE id = s.id;
    seq := t.event_seq;
    IF t.status IN ('accepted', 'queued') THEN
        seq := seq + 1;
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
        VALUES (p_task, seq, 'task.started', NULL, '{}'::jsonb, now_);
        UPDATE tasks SET status = 'in_progress', started_at = now_ WHERE id = p_task;
    END IF;
    seq := seq + 1;
    INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
    VALUES (p_task, seq, 'stage.started', p_stage,
            jsonb_build_object('attempt', s.attempt + 1, 'agent', s.agent), now_);
    UPDATE tasks SET event_seq = seq, updated_at = now_ WHERE id = p_task;
    RETURN QUERY SELECT
        'claimed'::text,
        s.attempt + 1,
        jsonb_build_object('stage', t.workflow -> p_stage, 'requirements', t.requirements,
                           'context', t.context, 'description', t.description),
        coalesce((SELECT jsonb_object_agg(d.name, d.output)
                    FROM stage_runs d
                   WHERE d.task_id = p_task AND d.name IN (SELECT jsonb_array_elements_text(s.dependencies))),
                 '{}'::jsonb);
END
$$;
"""

COMPLETE = r"""
CREATE OR REPLACE FUNCTION aia_complete_stage(
    p_task text, p_stage text, p_celery text, p_output jsonb, p_duration double precision
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t tasks%ROWTYPE;
    s stage_runs%ROWTYPE;
    now_ timestamptz := clock_timestamp();
    total integer;
    ended integer;
    failed integer;
    running_progress double precision;
    seq integer;
BEGIN
    SELECT * INTO t FROM tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    SELECT * INTO s FROM stage_runs WHERE task_id = p_task AND name = p_stage;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    IF s.status <> 'running' OR s.celery_id IS DISTINCT FROM p_celery THEN
        RETURN 'superseded';
    END IF;
    -- The other stages, as they will be once this one has completed.
    SELECT count(*) + 1,
           count(*) FILTER (WHERE status IN ('completed', 'failed', 'skipped', 'cancelled')) + 1,
           count(*) FILTER (WHERE status = 'failed'),
           coalesce(sum(progress / 100.0) FILTER (WHERE status = 'running'), 0)
      INTO total, ended, failed, running_progress
      FROM stage_runs WHERE task_id = p_task AND id <> s.id;
    IF ended = total AND failed > 0 THEN
        RETURN 'slow';  -- the workflow ends with failures: the Python runner settles it
    END IF;
    UPDATE stage_runs
       SET status = 'completed', output = p_output, error = NULL, progress = 100,
           finished_at = now_, updated_at = now_, lease_until = NULL
     WHERE id = s.id;
    seq := t.event_seq + 1;
    INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
    VALUES (p_task, seq, 'stage.completed', p_stage,
            jsonb_build_object('duration_s', round(p_duration::numeric, 4), 'attempt', s.attempt), now_);
    IF ended = total THEN
        seq := seq + 1;
        INSERT INTO task_events (task_id, seq, type, stage, payload, created_at)
        VALUES (p_task, seq, 'task.completed', NULL, jsonb_build_object('failed_stages', '[]'::jsonb), now_);
        UPDATE tasks
           SET status = 'completed', progress = 100, error = NULL, finished_at = now_,
               results = (SELECT coalesce(jsonb_object_agg(name, output), '{}'::jsonb)
                            FROM stage_runs WHERE task_id = p_task AND status = 'completed'),
               event_seq = seq, updated_at = now_
         WHERE id = p_task;
    ELSE
        UPDATE tasks
           SET progress = round((100.0 * (ended + running_progress) / total)::numeric, 1),
               event_seq = seq, updated_at = now_
         WHERE id = p_task;
    END IF;
    RETURN 'completed';
END
$$;
"""


def upgrade() -> None:
    op.execute(CLAIM)
    op.execute(COMPLETE)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS aia_claim_stage(text, text, text, double precision, double precision)")
    op.execute("DROP FUNCTION IF EXISTS aia_complete_stage(text, text, text, jsonb, double precision)")
