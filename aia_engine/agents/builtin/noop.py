"""`noop`: does nothing and returns at once; for smoke tests and benchmarks.

Offered to every API client, so it takes no parameter that reaches the host (files, sleeps,
processes): its cost is the same whatever a client sends. Tests that need a stage to wait,
report progress or fail use the test suite's own agent (tests/agents.py, registered through
AIA_AGENT_MODULES), which is never shipped.
"""

from __future__ import annotations

from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.agents.registry import agent


@agent(
    "noop",
    "Does nothing and returns at once. Param: echo (returned as is); other params are ignored.",
)
def run(ctx: AgentContext) -> dict[str, Any]:
    return {"stage": ctx.stage, "upstream": sorted(ctx.inputs), "echo": ctx.params.get("echo")}
