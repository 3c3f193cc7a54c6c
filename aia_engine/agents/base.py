"""The agent protocol and the context a stage gives its agent.

An agent is a named callable `run(ctx) -> dict`. `ctx.inputs` holds the outputs of the stage's
dependencies keyed by stage name; `ctx.params` the stage's params; `ctx.requirements` and
`ctx.context` the workflow input; `ctx.progress(percent, partial_results)` reports progress;
`ctx.datasets(name)` opens a named dataset: a `DatasetRows` that streams its records (see
`aia_engine.agents.builtin.inputs`).
A stage whose params hold a `graph_query` finds the query's rows in `ctx.inputs["graph"]`
(see `aia_engine.graph.inputs`). An agent may also define `check_params(stage)`, called with the
stage's `StageSpec` when a workflow naming it is submitted: it raises an `InvalidRequest`
naming the field, so a bad stage is refused with 422 before it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aia_engine.graph.model import NodeIn, RelationshipIn
    from aia_engine.graph.writing import Written

ProgressFn = Callable[[float, Mapping[str, Any] | None], None]


class DatasetRows(Protocol):
    """A stored dataset, read in the worker: iterating streams its records from PostgreSQL in
    chunks (in file order); `records()` gives them as a list, refused (E067) past
    AIA_DATASET_AGENT_MAX_ROWS."""

    @property
    def name(self) -> str: ...

    @property
    def rows(self) -> int: ...

    @property
    def columns(self) -> list[dict[str, Any]]: ...

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def records(self) -> list[dict[str, Any]]: ...


DatasetFn = Callable[[str], DatasetRows | None]
"""Opens a named dataset (a name or `ds_` id) as the task's client sees it (None: none)."""
GraphWriteFn = Callable[[list[tuple["NodeIn", bool]], list["RelationshipIn"]], "Written"]
"""Writes (node, merge) pairs and relationships to the task's client's knowledge graph in one
transaction (`aia_engine.graph.writing.write_items`, source "agent", this task's id)."""
BusinessFiguresFn = Callable[[str | None], dict[str, Any]]
"""The business dashboard (`aia_engine.bi.dashboard`) of the task's client for a month
(YYYY-MM, None: the latest data's)."""


@dataclass
class AgentContext:
    task_id: str
    stage: str
    task: str
    inputs: Mapping[str, Mapping[str, Any]]
    params: Mapping[str, Any]
    requirements: Mapping[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    attempt: int = 1
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("aia_engine.agents"))
    _progress: ProgressFn | None = None
    datasets: DatasetFn | None = None
    """Reads named datasets from PostgreSQL when the stage runs (set by the stage runner)."""
    graph_write: GraphWriteFn | None = None
    """Writes to the task's client's knowledge graph (set by the stage runner)."""
    business_figures: BusinessFiguresFn | None = None
    """The task's client's business dashboard, computed when called (set by the stage runner)."""

    def progress(self, percent: float, partial_results: Mapping[str, Any] | None = None) -> None:
        """Report progress (0-100) and optional partial results; persisted throttled."""
        if self._progress is not None:
            self._progress(max(0.0, min(100.0, float(percent))), partial_results)

    def param(self, name: str, default: Any = None) -> Any:
        """A stage param, falling back to the workflow requirements, then `default`."""
        if name in self.params:
            return self.params[name]
        return self.requirements.get(name, default)


@runtime_checkable
class Agent(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def run(self, ctx: AgentContext) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FunctionAgent:
    """An agent made from a plain function."""

    name: str
    description: str
    fn: Callable[[AgentContext], dict[str, Any]]

    def run(self, ctx: AgentContext) -> dict[str, Any]:
        return self.fn(ctx)
