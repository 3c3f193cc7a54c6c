"""`noop`: does nothing, for benchmarks and tests; optionally waits, reports progress or fails."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent
from aia_engine.errors import AgentError


@agent(
    "noop",
    "Does nothing and returns at once. Params: sleep_s (wait, reporting progress in `steps`), "
    "fail (always fail), fail_attempts (fail the first N attempts), fail_until_exists (fail while "
    "that file is missing, so a failure can be fixed and retried), echo (returned as is).",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    attempt = ctx.attempt
    if ctx.params.get("fail") or attempt <= int(ctx.params.get("fail_attempts", 0)):
        raise AgentError(f"noop stage {ctx.stage!r} failed on purpose (attempt {attempt})")
    marker = ctx.params.get("fail_until_exists")
    if marker and not Path(str(marker)).exists():
        raise AgentError(f"noop stage {ctx.stage!r}: {marker} does not exist yet")
    sleep_s = float(ctx.params.get("sleep_s", 0))
    if sleep_s > 0:
        steps = max(1, int(ctx.params.get("steps", 1)))
        for step in range(1, steps + 1):
            time.sleep(sleep_s / steps)
            ctx.progress(100.0 * step / steps, {"step": step, "steps": steps})
    return {"stage": ctx.stage, "upstream": sorted(ctx.inputs), "echo": ctx.params.get("echo")}
