"""`?dry_run=true`: the validated plan of a workflow, without running it."""

from __future__ import annotations

from typing import Any

from aia_engine.clock import utcnow
from aia_engine.db.session import Sessions
from aia_engine.settings import Settings
from aia_engine.tasks.catalog import Catalog
from aia_engine.tasks.estimates import agent_durations, stage_weights
from aia_engine.tasks.models import TaskRequest
from aia_engine.tasks.submit import build_spec
from workflows.compiler import CompileOptions, canvas_shape, compile_workflow
from workflows.plan import critical_path, is_series_parallel, makespan, plan_workflow


def plan_task(
    sessions: Sessions, request: TaskRequest, *, settings: Settings, client_id: str
) -> dict[str, Any]:
    spec = build_spec(request, settings, Catalog(sessions, client_id=client_id))
    with sessions.begin() as session:
        durations = agent_durations(session, now=utcnow())
    weights = stage_weights(spec, durations)
    canvas = compile_workflow(
        spec,
        task_id="dry_run",
        options=CompileOptions(
            settings.default_stage_timeout_s, settings.stage_hard_limit_grace_s, request.priority
        ),
    )
    return {
        "valid": True,
        "dry_run": True,
        "task_type": request.task_type,
        "assigned_agents": spec.agents,
        "stages": [
            {
                "name": s.name,
                "agent": s.agent,
                "task": s.task,
                "dependencies": list(s.dependencies),
                "retries": s.retries,
                "timeout_s": s.timeout_s or settings.default_stage_timeout_s,
                "on_failure": s.on_failure,
                "estimated_duration_s": round(weights[s.name], 3),
            }
            for s in spec.stages.values()
        ],
        "execution_order": spec.topological_order(),
        "series_parallel": is_series_parallel(spec),
        "compiled_shape": canvas_shape(canvas),
        "estimated_duration_s": round(makespan(plan_workflow(spec), weights), 3),
        "critical_path_s": round(critical_path(spec, weights), 3),
    }
