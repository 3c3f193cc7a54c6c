"""Agents for the test suite only, registered through `AIA_AGENT_MODULES=["tests.agents"]`.

`test_noop` does what tests need of a stage and no shipped agent may offer to API clients:
wait, report progress, fail on purpose, fail until a file exists, produce an output of a chosen
size or kill its own worker process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent
from aia_engine.errors import AgentError


@agent(
    "test_noop",
    "Test-only. Params: sleep_s (wait, reporting progress in `steps`), fail (always fail), "
    "fail_attempts (fail the first N attempts), fail_until_exists (fail while that file is "
    "missing), pad_bytes (add a string of that many bytes to the output), emit_nul (put a NUL "
    "character in the output, which PostgreSQL refuses), exit_process (end the worker process "
    "mid-stage), raise_error (raise a RuntimeError with that text, as a buggy agent would), "
    "echo (returned as is).",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    attempt = ctx.attempt
    if ctx.params.get("fail") or attempt <= int(ctx.params.get("fail_attempts", 0)):
        raise AgentError(f"test_noop stage {ctx.stage!r} failed on purpose (attempt {attempt})")
    marker = ctx.params.get("fail_until_exists")
    if marker and not Path(str(marker)).exists():
        raise AgentError(f"test_noop stage {ctx.stage!r}: {marker} does not exist yet")
    if ctx.params.get("raise_error"):
        raise RuntimeError(str(ctx.params["raise_error"]))
    if ctx.params.get("exit_process"):
        os._exit(17)  # as a crash would: no outcome is recorded, the message is redelivered
    sleep_s = float(ctx.params.get("sleep_s", 0))
    if sleep_s > 0:
        steps = max(1, int(ctx.params.get("steps", 1)))
        for step in range(1, steps + 1):
            time.sleep(sleep_s / steps)
            ctx.progress(100.0 * step / steps, {"step": step, "steps": steps})
    output: dict[str, Any] = {
        "stage": ctx.stage,
        "upstream": sorted(ctx.inputs),
        "echo": ctx.params.get("echo"),
    }
    if ctx.params.get("emit_nul"):
        output["nul"] = "a\x00b"
    if ctx.params.get("pad_bytes"):
        output["pad"] = "x" * int(ctx.params["pad_bytes"])
    return output


@agent(
    "test_kg_fail_after_write",
    "Test-only. Runs knowledge_graph_agent with the stage's params (less fail_attempts), then "
    "fails the first fail_attempts attempts: a retried graph stage after its write committed.",
)
def kg_fail_after_write(ctx: AgentContext) -> dict[str, Any]:
    from dataclasses import replace

    from aia_engine.agents.registry import get_agent

    params = {k: v for k, v in ctx.params.items() if k != "fail_attempts"}
    output = get_agent("knowledge_graph_agent").run(replace(ctx, params=params))
    if ctx.attempt <= int(ctx.params.get("fail_attempts", 0)):
        raise AgentError(f"failed on purpose after writing (attempt {ctx.attempt}): {output}")
    return output
