"""Stage params checked when a workflow is submitted, so a stage that could never run is refused
with 422 naming the field, instead of failing later in a worker.

Two kinds: a param any stage may carry (`graph_query`, `aia_engine.graph.inputs`;
`semantic_search`, `aia_engine.search.inputs`), and an
agent's own, when the agent defines `check_params(stage)` (the `knowledge_graph_agent`'s
mapping)."""

from __future__ import annotations

from aia_engine.agents.registry import get_agent
from aia_engine.graph import inputs as graph_inputs
from aia_engine.search import inputs as search_inputs
from workflows.spec import WorkflowSpec


def check_stage_params(spec: WorkflowSpec) -> None:
    """Raises an `InvalidRequest` (E045, E046, E062, ...) for the first stage whose params are wrong."""
    for stage in spec.stages.values():
        if graph_inputs.PARAM in stage.params:
            graph_inputs.parse_graph_query(
                stage.params[graph_inputs.PARAM],
                f"workflow.{stage.name}.params",
                stage.dependencies,
            )
        if search_inputs.PARAM in stage.params:
            search_inputs.parse_semantic_search(
                stage.params[search_inputs.PARAM],
                f"workflow.{stage.name}.params",
                stage.dependencies,
            )
        check = getattr(get_agent(stage.agent), "check_params", None)
        if callable(check):
            check(stage)
