"""Workflow specs: parse and validate the guide's orchestration body.

Pure: no database, no broker. The graph checks use networkx. Every error is an `InvalidWorkflow`
whose message names the offending stage and whose details carry the guide's
`field` / `issue` / `provided_value`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import networkx as nx

from aia_engine.errors import InvalidWorkflow

OnFailure = Literal["fail_workflow", "continue"]
ON_FAILURE_CHOICES: tuple[OnFailure, ...] = ("fail_workflow", "continue")
STAGE_FIELDS = frozenset(
    {
        "agent",
        "task",
        "dependencies",
        "params",
        "retries",
        "retry_backoff",
        "timeout_s",
        "on_failure",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")


@dataclass(frozen=True)
class StageSpec:
    """One stage: which agent runs, what it is told, what it waits for and how it fails."""

    name: str
    agent: str
    task: str = ""
    dependencies: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    retry_backoff: float = 1.0
    timeout_s: float | None = None
    on_failure: OnFailure = "fail_workflow"

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "task": self.task,
            "dependencies": list(self.dependencies),
            "params": dict(self.params),
            "retries": self.retries,
            "retry_backoff": self.retry_backoff,
            "timeout_s": self.timeout_s,
            "on_failure": self.on_failure,
        }


@dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow: stages in submission order, dependencies forming a DAG."""

    stages: Mapping[str, StageSpec]

    def __post_init__(self) -> None:
        # Cached graph; the dataclass is frozen, so set it through object.__setattr__.
        graph = nx.DiGraph()
        graph.add_nodes_from(self.stages)
        for stage in self.stages.values():
            graph.add_edges_from((dep, stage.name) for dep in stage.dependencies)
        object.__setattr__(self, "_graph", graph)

    @property
    def graph(self) -> nx.DiGraph:
        """Edges point from a dependency to the stage that waits for it."""
        return self._graph  # type: ignore[attr-defined]

    @property
    def agents(self) -> list[str]:
        """Distinct agents in stage order (the guide's `assigned_agents`)."""
        return list(dict.fromkeys(stage.agent for stage in self.stages.values()))

    def topological_order(self) -> list[str]:
        cached: list[str] | None = self.__dict__.get("_order")
        if cached is None:
            position = {name: i for i, name in enumerate(self.stages)}
            cached = list(nx.lexicographical_topological_sort(self.graph, key=position.__getitem__))
            object.__setattr__(self, "_order", cached)
        return list(cached)

    def descendants(self, name: str) -> set[str]:
        return set(nx.descendants(self.graph, name))

    def ancestors(self, name: str) -> set[str]:
        return set(nx.ancestors(self.graph, name))

    def subset(self, names: Iterable[str]) -> WorkflowSpec:
        """The sub-workflow of `names`; dependencies outside it count as already satisfied."""
        keep = set(names)
        return WorkflowSpec(
            {
                name: _replace_deps(stage, tuple(d for d in stage.dependencies if d in keep))
                for name, stage in self.stages.items()
                if name in keep
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: stage.to_dict() for name, stage in self.stages.items()}


def _replace_deps(stage: StageSpec, deps: tuple[str, ...]) -> StageSpec:
    return StageSpec(
        name=stage.name,
        agent=stage.agent,
        task=stage.task,
        dependencies=deps,
        params=stage.params,
        retries=stage.retries,
        retry_backoff=stage.retry_backoff,
        timeout_s=stage.timeout_s,
        on_failure=stage.on_failure,
    )


@dataclass(frozen=True)
class Limits:
    max_stages: int = 100
    max_retries: int = 10
    max_timeout_s: float = 900.0


def parse_workflow(
    raw: Any,
    *,
    known_agents: Collection[str] | None = None,
    limits: Limits | None = None,
) -> WorkflowSpec:
    """Parse and validate the guide's `workflow` body.

    `raw` is either the guide's mapping `{stage_name: {agent, task, dependencies, ...}}` or a
    list of stage objects each with a `name`. Raises `InvalidWorkflow` on the first problem.
    """
    limits = limits or Limits()
    items = _stage_items(raw)
    if not items:
        raise InvalidWorkflow(
            "workflow is empty; give at least one stage",
            field="workflow",
            issue="empty workflow",
            provided_value=raw,
        )
    if len(items) > limits.max_stages:
        raise InvalidWorkflow(
            f"workflow has {len(items)} stages; at most {limits.max_stages} are allowed",
            field="workflow",
            issue="too many stages",
            provided_value=len(items),
        )
    stages: dict[str, StageSpec] = {}
    for name, body in items:
        if name in stages:
            raise InvalidWorkflow(
                f"stage name {name!r} is used twice; stage names must be unique",
                field=f"workflow.{name}",
                issue="duplicate stage name",
                provided_value=name,
                stage=name,
            )
        stages[name] = _parse_stage(name, body, known_agents=known_agents, limits=limits)
    _check_graph(stages)
    return WorkflowSpec(stages)


def spec_from_dict(data: Mapping[str, Any]) -> WorkflowSpec:
    """Rebuild a spec stored by `WorkflowSpec.to_dict()` (already validated once).

    Cached by content: every stage of a workflow, and every task of a template, rebuilds the
    same spec, and specs are immutable.
    """
    return _spec_from_json(json.dumps(data, sort_keys=True, separators=(",", ":")))


def stage_from_dict(name: str, data: Mapping[str, Any]) -> StageSpec:
    """Rebuild one stage stored by `StageSpec.to_dict()` (already validated once)."""
    return _parse_stage(name, data, known_agents=None, limits=_STORED)


_STORED = Limits(max_stages=10_000, max_retries=10_000, max_timeout_s=float("inf"))


@lru_cache(maxsize=1024)
def _spec_from_json(text: str) -> WorkflowSpec:
    return parse_workflow(
        json.loads(text),
        limits=Limits(max_stages=10_000, max_retries=10_000, max_timeout_s=float("inf")),
    )


def load_json_strict(text: str | bytes) -> Any:
    """`json.loads` that refuses duplicate keys, so a stage named twice is not silently dropped."""
    return json.loads(text, object_pairs_hook=_reject_duplicate_keys)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidWorkflow(
                f"key {key!r} appears twice in one JSON object; stage names and fields must be unique",
                field=key,
                issue="duplicate key",
                provided_value=key,
            )
        result[key] = value
    return result


def _stage_items(raw: Any) -> list[tuple[str, Any]]:
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise InvalidWorkflow(
                    f"workflow[{i}] must be an object with a string 'name'",
                    field=f"workflow[{i}]",
                    issue="stage without a name",
                    provided_value=entry,
                )
            body = {k: v for k, v in entry.items() if k != "name"}
            items.append((entry["name"], body))
    else:
        raise InvalidWorkflow(
            "workflow must be an object mapping stage names to stages",
            field="workflow",
            issue="wrong type",
            provided_value=raw,
        )
    for name, _ in items:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidWorkflow(
                f"stage name {name!r} is invalid; use 1-100 letters, digits, '_', '.' or '-'",
                field="workflow",
                issue="invalid stage name",
                provided_value=name,
            )
    return items


def _fail(stage: str, key: str, issue: str, value: Any, expected: str) -> InvalidWorkflow:
    return InvalidWorkflow(
        f"stage {stage!r}: {key} {issue}; expected {expected}",
        field=f"workflow.{stage}.{key}",
        issue=issue,
        provided_value=value,
        stage=stage,
    )


def _parse_stage(
    name: str, body: Any, *, known_agents: Collection[str] | None, limits: Limits
) -> StageSpec:
    if not isinstance(body, Mapping):
        raise InvalidWorkflow(
            f"stage {name!r} must be an object with at least an 'agent'",
            field=f"workflow.{name}",
            issue="wrong type",
            provided_value=body,
            stage=name,
        )
    unknown = sorted(set(body) - STAGE_FIELDS)
    if unknown:
        raise _fail(
            name,
            unknown[0],
            "is not a stage field",
            body[unknown[0]],
            "one of " + ", ".join(sorted(STAGE_FIELDS)),
        )
    agent = body.get("agent")
    if not isinstance(agent, str) or not agent:
        raise _fail(name, "agent", "is missing or not a string", agent, "an agent name")
    if known_agents is not None and agent not in known_agents:
        raise InvalidWorkflow(
            f"stage {name!r}: unknown agent {agent!r}; known agents: {', '.join(sorted(known_agents))}",
            field=f"workflow.{name}.agent",
            issue="unknown agent",
            provided_value=agent,
            stage=name,
        )
    task = body.get("task", "")
    if not isinstance(task, str):
        raise _fail(name, "task", "is not a string", task, "a description of the stage's work")
    deps = body.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _fail(name, "dependencies", "is not a list of stage names", deps, "a list of strings")
    if len(set(deps)) != len(deps):
        raise _fail(name, "dependencies", "lists a stage twice", deps, "each dependency once")
    params = body.get("params", {})
    if not isinstance(params, Mapping):
        raise _fail(name, "params", "is not an object", params, "an object of agent parameters")
    return StageSpec(
        name=name,
        agent=agent,
        task=task,
        dependencies=tuple(deps),
        params=dict(params),
        retries=_int_in(name, "retries", body.get("retries", 0), 0, limits.max_retries),
        retry_backoff=_number_in(name, "retry_backoff", body.get("retry_backoff", 1.0), 0, 3600),
        timeout_s=_optional_timeout(name, body.get("timeout_s"), limits.max_timeout_s),
        on_failure=_on_failure(name, body.get("on_failure", "fail_workflow")),
    )


def _int_in(stage: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(stage, key, "is out of range", value, f"an integer from {low} to {high}")
    return value


def _number_in(stage: str, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _fail(stage, key, "is out of range", value, f"a number from {low} to {high}")
    return float(value)


def _optional_timeout(stage: str, value: Any, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
        raise _fail(
            stage, "timeout_s", "is out of range", value, f"seconds above 0 and at most {high:g}"
        )
    return float(value)


def _on_failure(stage: str, value: Any) -> OnFailure:
    for choice in ON_FAILURE_CHOICES:
        if value == choice:
            return choice
    raise _fail(
        stage, "on_failure", "is not a known policy", value, " or ".join(ON_FAILURE_CHOICES)
    )


def _check_graph(stages: Mapping[str, StageSpec]) -> None:
    for stage in stages.values():
        for dep in stage.dependencies:
            if dep == stage.name:
                raise InvalidWorkflow(
                    f"stage {stage.name!r} depends on itself",
                    field=f"workflow.{stage.name}.dependencies",
                    issue="self-dependency",
                    provided_value=dep,
                    stage=stage.name,
                )
            if dep not in stages:
                raise InvalidWorkflow(
                    f"stage {stage.name!r} depends on unknown stage {dep!r}; "
                    f"stages are: {', '.join(stages)}",
                    field=f"workflow.{stage.name}.dependencies",
                    issue="unknown dependency",
                    provided_value=dep,
                    stage=stage.name,
                )
    graph = nx.DiGraph()
    graph.add_nodes_from(stages)
    for stage in stages.values():
        graph.add_edges_from((dep, stage.name) for dep in stage.dependencies)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    names = [edge[0] for edge in cycle] + [cycle[0][0]]
    raise InvalidWorkflow(
        f"workflow has a cycle: {' -> '.join(names)}; dependencies must form a DAG",
        field="workflow",
        issue="dependency cycle",
        provided_value=names[:-1],
        cycle=names,
        stage=names[0],
    )
