"""The compiler: shapes, JSON round trip, and property tests over random DAGs."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.compiler import (
    CompileOptions,
    canvas_shape,
    compile_workflow,
    guaranteed_predecessors,
)
from workflows.plan import critical_path, is_series_parallel, makespan, plan_workflow
from workflows.spec import WorkflowSpec, parse_workflow


def wf(deps: dict[str, list[str]]) -> WorkflowSpec:
    return parse_workflow({name: {"agent": "noop", "dependencies": d} for name, d in deps.items()})


def shape(deps: dict[str, list[str]]) -> Any:
    return canvas_shape(compile_workflow(wf(deps), task_id="task_x"))


def test_single_stage_is_one_signature() -> None:
    assert shape({"a": []}) == "a"


def test_guides_four_stage_workflow_is_a_chain() -> None:
    assert shape({"s1": [], "s2": ["s1"], "s3": ["s1", "s2"], "s4": ["s1", "s2", "s3"]}) == {
        "chain": ["s1", "s2", "s3", "s4"]
    }


def test_diamond_is_chain_into_chord() -> None:
    assert shape({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}) == {
        "chain": ["a", {"chord": {"header": ["b", "c"], "body": "d"}}]
    }


def test_independent_branches_are_a_group_of_chains() -> None:
    assert shape({"a": [], "b": ["a"], "x": [], "y": ["x"]}) == {
        "group": [{"chain": ["a", "b"]}, {"chain": ["x", "y"]}]
    }


def test_fan_out_fan_in() -> None:
    deps: dict[str, list[str]] = {"src": []}
    deps |= {f"w{i}": ["src"] for i in range(5)}
    deps["sink"] = [f"w{i}" for i in range(5)]
    assert shape(deps) == {
        "chain": ["src", {"chord": {"header": [f"w{i}" for i in range(5)], "body": "sink"}}]
    }


def test_non_series_parallel_n_shape_waits_only_where_it_must() -> None:
    # a -> c, b -> c, b -> d: d must wait for b; the cut makes it wait for a too (one extra wait).
    spec = wf({"a": [], "b": [], "c": ["a", "b"], "d": ["b"]})
    assert not is_series_parallel(spec)
    before = guaranteed_predecessors(compile_workflow(spec, task_id="t"))
    assert before["c"] >= {"a", "b"} and before["d"] >= {"b"}
    assert makespan(plan_workflow(spec)) == critical_path(spec) == 2


def test_messages_carry_ids_and_limits_not_payloads() -> None:
    sig = compile_workflow(
        wf({"a": []}),
        task_id="task_1",
        options=CompileOptions(default_timeout_s=30, hard_limit_grace_s=5, priority="high"),
    )
    assert sig["task"] == "aia.run_stage"
    assert sig["kwargs"] == {"task_id": "task_1", "stage": "a"}
    assert sig["immutable"] is True
    assert sig["options"]["queue"] == "aia.high"
    assert (sig["options"]["soft_time_limit"], sig["options"]["time_limit"]) == (30, 35)


def test_stage_timeout_overrides_the_default() -> None:
    spec = parse_workflow({"a": {"agent": "noop", "timeout_s": 7}})
    sig = compile_workflow(
        spec, task_id="t", options=CompileOptions(default_timeout_s=30, hard_limit_grace_s=5)
    )
    assert (sig["options"]["soft_time_limit"], sig["options"]["time_limit"]) == (7, 12)


def test_only_chord_members_keep_results() -> None:
    sig = compile_workflow(wf({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}), task_id="t")
    a, chord = sig["kwargs"]["tasks"]
    assert a["options"]["ignore_result"] is True
    header = chord["kwargs"]["header"]
    members = header["kwargs"]["tasks"] if isinstance(header, dict) else header
    assert [h["kwargs"]["stage"] for h in members] == ["b", "c"]
    assert all(not h["options"]["ignore_result"] for h in members)
    assert chord["kwargs"]["body"]["options"]["ignore_result"] is True


def test_canvas_round_trips_through_json() -> None:
    from celery import signature

    sig = compile_workflow(
        wf({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}), task_id="t"
    )
    again = signature(json.loads(json.dumps(sig)))
    assert canvas_shape(again) == canvas_shape(sig)


def test_message_size_of_a_long_chain_of_chords_stays_small() -> None:
    # Ten diamonds in a row: the nesting that grows quadratically (celery#5000) stays modest
    # because each stage is only ids and limits.
    deps: dict[str, list[str]] = {"s0": []}
    for i in range(10):
        deps |= {f"l{i}": [f"s{i}"], f"r{i}": [f"s{i}"], f"s{i + 1}": [f"l{i}", f"r{i}"]}
    assert len(json.dumps(compile_workflow(wf(deps), task_id="task_0123456789abcdef"))) < 40_000


# -- property tests --------------------------------------------------------------------------


@st.composite
def random_dags(draw: st.DrawFn, max_stages: int = 30) -> dict[str, list[str]]:
    n = draw(st.integers(min_value=1, max_value=max_stages))
    density = draw(st.floats(min_value=0.0, max_value=0.6))
    deps: dict[str, list[str]] = {}
    for j in range(n):
        deps[f"s{j}"] = [f"s{i}" for i in range(j) if draw(st.floats(0, 1)) < density]
    return deps


def sp_expressions() -> st.SearchStrategy[Any]:
    leaf = st.just("leaf")
    return st.recursive(
        leaf,
        lambda children: st.tuples(
            st.sampled_from(["seq", "par"]), st.lists(children, min_size=2, max_size=4)
        ),
        max_leaves=30,
    )


def dag_of(expr: Any) -> dict[str, list[str]]:
    """Build a DAG whose reachability order is the series-parallel expression `expr`."""
    deps: dict[str, list[str]] = {}

    def build(e: Any) -> tuple[list[str], list[str]]:  # (sources, sinks)
        if e == "leaf":
            name = f"s{len(deps)}"
            deps[name] = []
            return [name], [name]
        kind, parts = e
        built = [build(p) for p in parts]
        if kind == "par":
            return [s for b in built for s in b[0]], [s for b in built for s in b[1]]
        for (_, sinks), (sources, _) in itertools.pairwise(built):
            for src in sources:
                deps[src] = sorted(set(deps[src]) | set(sinks))
        return built[0][0], built[-1][1]

    build(expr)
    return deps


@settings(max_examples=300, deadline=None)
@given(random_dags())
def test_no_stage_can_start_before_its_dependencies_finish(deps: dict[str, list[str]]) -> None:
    spec = wf(deps)
    sig = compile_workflow(spec, task_id="t")
    before = guaranteed_predecessors(sig)
    assert sorted(before) == sorted(spec.stages), "every stage appears exactly once"
    for name in spec.stages:
        assert spec.ancestors(name) <= before[name], (
            f"{name} could start before {spec.ancestors(name) - before[name]}"
        )
        assert name not in before[name]
    assert makespan(plan_workflow(spec)) >= critical_path(spec)
    json.dumps(sig)


@settings(max_examples=300, deadline=None)
@given(sp_expressions())
def test_series_parallel_workflows_get_no_extra_waits(expr: Any) -> None:
    spec = wf(dag_of(expr))
    assert is_series_parallel(spec)
    before = guaranteed_predecessors(compile_workflow(spec, task_id="t"))
    for name in spec.stages:
        assert before[name] == spec.ancestors(name), name
    assert makespan(plan_workflow(spec)) == critical_path(spec)
