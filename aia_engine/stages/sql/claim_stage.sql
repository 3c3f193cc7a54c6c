-- aia_claim_stage: a delivery of a stage's message claims it, in one round trip.
-- The decision table is aia_engine/stages/machine.py's `decide_claim`; this function takes
-- the outcomes missing, ended, held, wait and run itself, and answers 'slow' (changing
-- nothing) for the rest (cancelled, lost, skipped, a re-run after a lost run), which the
-- Python executor (aia_engine/stages/run.py) decides. Same locks, same order: the task row,
-- then its stages. Loaded by aia_engine/db/repeatable.py; edit here, nowhere else.
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
