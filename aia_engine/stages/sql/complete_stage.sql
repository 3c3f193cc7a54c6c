-- aia_complete_stage: a run hands in its success, in one round trip.
-- The decision table is aia_engine/stages/machine.py's `decide_completion`; this function
-- takes missing, superseded and completed itself, and answers 'slow' (changing nothing)
-- when the task is no longer active or when the workflow would end with failures: the
-- Python executor settles those. Loaded by aia_engine/db/repeatable.py; edit here only.
CREATE OR REPLACE FUNCTION aia_complete_stage(
    p_task text, p_stage text, p_celery text, p_output jsonb, p_duration double precision
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t_seq integer;
    t_status text;
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
    SELECT event_seq, status INTO t_seq, t_status FROM tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    SELECT id, status, celery_id, attempt INTO s_id, s_status, s_celery, s_attempt
      FROM stage_runs WHERE task_id = p_task AND name = p_stage;
    IF NOT FOUND THEN RETURN 'missing'; END IF;
    IF s_status <> 'running' OR s_celery IS DISTINCT FROM p_celery THEN
        RETURN 'superseded';
    END IF;
    IF t_status IN ('completed', 'failed', 'cancelled') THEN
        RETURN 'slow';  -- the task has ended: Python records the stage and leaves the task as it is
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
