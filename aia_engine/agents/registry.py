"""The agent registry: built-ins plus third-party agents from the `aia_engine.agents` entry points.

A third-party package declares, in its pyproject.toml:

    [project.entry-points."aia_engine.agents"]
    my_agent = "my_package.agents:my_agent"

where `my_agent` is an object with `name`, `description` and `run(ctx) -> dict` (or a function
taking the context, whose docstring becomes the description).

An operator can also name modules in AIA_AGENT_MODULES (a JSON list); each is imported when the
registry is first used (API and workers do that at start) and registers its agents with
`@agent(...)`. A module that cannot be imported stops the process: it was asked for by name.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from aia_engine.agents.base import Agent, AgentContext, FunctionAgent
from aia_engine.errors import InternalAgent, UnknownAgent
from workflows.spec import WorkflowSpec

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "aia_engine.agents"

_registry: dict[str, Agent] = {}
_internal: set[str] = set()
"""Agents only the engine's own submission paths may name (e.g. the optimization cycle's)."""
_discovered = False
_discover_lock = threading.Lock()


class AgentModuleError(RuntimeError):
    """Raised when a module named in AIA_AGENT_MODULES cannot be imported."""


def register(agent: Agent, *, replace: bool = False) -> Agent:
    if not isinstance(agent, Agent):
        raise TypeError(f"{agent!r} is not an agent: it needs name, description and run(ctx)")
    if agent.name in _registry and not replace and _registry[agent.name] is not agent:
        raise ValueError(f"an agent named {agent.name!r} is already registered")
    _registry[agent.name] = agent
    return agent


def agent(
    name: str, description: str, *, internal: bool = False
) -> Callable[[Callable[[AgentContext], dict[str, Any]]], Agent]:
    """Decorator: register a function `fn(ctx) -> dict` as an agent. An `internal` one runs only
    in workflows the engine builds itself (`refuse_internal` guards the submission paths)."""

    def wrap(fn: Callable[[AgentContext], dict[str, Any]]) -> Agent:
        registered = register(FunctionAgent(name=name, description=description, fn=fn))
        if internal:
            _internal.add(name)
        return registered

    return wrap


def internal_agents() -> frozenset[str]:
    _discover()
    return frozenset(_internal)


def refuse_internal(
    spec: WorkflowSpec, *, field: str | None = "workflow", agents_required: Iterable[str] = ()
) -> None:
    """InternalAgent (422) if `spec` or `agents_required` names an internal agent. `field` is
    where the workflow came from: `workflow` (its stages are named in the field), or e.g.
    `task_type` for an operator-defined type."""
    internal = internal_agents()
    for name in agents_required:
        if name in internal:
            raise InternalAgent(name, field="agents_required")
    for stage in spec.stages.values():
        if stage.agent in internal:
            where = f"workflow.{stage.name}.agent" if field == "workflow" else str(field)
            raise InternalAgent(stage.agent, field=where)


def get_agent(name: str) -> Agent:
    _discover()
    try:
        return _registry[name]
    except KeyError:
        raise UnknownAgent(name, known_agents()) from None


def known_agents() -> list[str]:
    _discover()
    return sorted(_registry)


def describe_agents() -> dict[str, str]:
    _discover()
    return {name: _registry[name].description for name in sorted(_registry)}


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _discover_lock:
        if _discovered:
            return
        from aia_engine.agents import builtin  # noqa: F401  (registers the built-ins)
        from aia_engine.bi import agents as _bi_agents  # noqa: F401  (the cycle's built-ins)

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _register_entry_point(ep)
        _import_agent_modules()
        # Set last: another thread must never see a half-filled registry.
        _discovered = True


def _import_agent_modules() -> None:
    from aia_engine.settings import get_settings

    for name in get_settings().agent_modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise AgentModuleError(
                f"AIA_AGENT_MODULES names {name!r}, which cannot be imported: {exc!r}"
            ) from exc


def _register_entry_point(ep: EntryPoint) -> None:
    try:
        loaded = ep.load()
    except Exception:
        log.exception("could not load agent entry point %s", ep.value)
        return
    if callable(loaded) and not isinstance(loaded, Agent):
        loaded = FunctionAgent(name=ep.name, description=(loaded.__doc__ or "").strip(), fn=loaded)
    try:
        register(loaded)
    except (TypeError, ValueError) as exc:
        log.error("agent entry point %s refused: %s", ep.value, exc)
