"""Stage completions are durable by default: worker connections run with synchronous_commit
`on` unless AIA_WORKER_SYNCHRONOUS_COMMIT says otherwise, and the stage lifecycle never turns
it off by itself."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from sqlalchemy import event

from tests.integration.conftest import ROOT, Engine, Services, noop, workflow

# What a worker process's stage sessions (workers.runtime) say, read in a fresh process.
SHOW = (
    "from sqlalchemy import text\n"
    "from workers import runtime\n"
    "with runtime.sessions().begin() as s:\n"
    "    print(s.execute(text('SHOW synchronous_commit')).scalar())\n"
    "with runtime.webhook_sessions().begin() as s:\n"
    "    print(s.execute(text('SHOW synchronous_commit')).scalar())\n"
)


def worker_setting(services: Services, value: str | None) -> list[str]:
    env = {k: v for k, v in services.env.items() if k != "AIA_WORKER_SYNCHRONOUS_COMMIT"}
    if value is not None:
        env["AIA_WORKER_SYNCHRONOUS_COMMIT"] = value
    done = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_worker_connections_are_durable_unless_the_setting_says_off(services: Services) -> None:
    assert worker_setting(services, None) == ["on", "on"]
    assert worker_setting(services, "off") == ["off", "off"]
    assert worker_setting(services, "on") == ["on", "on"]


def test_the_stage_lifecycle_never_turns_synchronous_commit_off(engine: Engine) -> None:
    from workers import runtime

    runtime._sessions_for.cache_clear()
    sessions = runtime.sessions()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    bind = sessions.kw["bind"]
    event.listen(bind, "before_cursor_execute", seen)
    try:
        from aia_engine.stages.run import execute_stage

        settings = engine.services.settings.model_copy(update={"stage_fast_path": False})
        task_id = engine.submit(workflow({"a": noop(sleep_s=0.3, steps=3)}), client_id="durable")
        outcome = execute_stage(
            sessions, task_id=task_id, stage="a", celery_id="c-durable", settings=settings
        )
        assert outcome.kind == "completed"
    finally:
        event.remove(bind, "before_cursor_execute", seen)
        bind.dispose()
        runtime._sessions_for.cache_clear()
    # Claim, progress reports and completion all ran here, none of them relaxed.
    assert len(statements) > 5
    assert not [s for s in statements if "synchronous_commit" in s.lower()]
