"""Validation: one test per rule; each message names the offending stage."""

from __future__ import annotations

from typing import Any

import pytest

from aia_engine.errors import InvalidWorkflow
from workflows.spec import Limits, load_json_strict, parse_workflow

AGENTS = {"a1", "a2"}


def stage(agent: str = "a1", deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"agent": agent, "task": "t", "dependencies": deps or [], **extra}


def reject(raw: Any, **kwargs: Any) -> InvalidWorkflow:
    with pytest.raises(InvalidWorkflow) as info:
        parse_workflow(raw, known_agents=AGENTS, **kwargs)
    return info.value


def test_the_guides_four_stage_workflow_is_valid() -> None:
    spec = parse_workflow(
        {
            "stage_1": stage(),
            "stage_2": stage("a2", ["stage_1"]),
            "stage_3": stage("a1", ["stage_1", "stage_2"]),
            "stage_4": stage("a2", ["stage_1", "stage_2", "stage_3"]),
        },
        known_agents=AGENTS,
    )
    assert list(spec.stages) == ["stage_1", "stage_2", "stage_3", "stage_4"]
    assert spec.agents == ["a1", "a2"]
    assert spec.stages["stage_4"].on_failure == "fail_workflow"


def test_unknown_agent_is_rejected_naming_the_stage_and_agent() -> None:
    err = reject({"s1": stage("ghost")})
    assert "'s1'" in err.message and "'ghost'" in err.message
    assert err.details["issue"] == "unknown agent" and err.details["field"] == "workflow.s1.agent"


def test_unknown_dependency_is_rejected() -> None:
    err = reject({"s1": stage(), "s2": stage(deps=["nope"])})
    assert "'s2'" in err.message and "'nope'" in err.message
    assert err.details["issue"] == "unknown dependency"


def test_self_dependency_is_rejected() -> None:
    err = reject({"s1": stage(deps=["s1"])})
    assert err.details["issue"] == "self-dependency" and "'s1' depends on itself" in err.message


def test_cycle_is_rejected_with_the_cycle_in_the_message() -> None:
    err = reject(
        {"a": stage(deps=["c"]), "b": stage(deps=["a"]), "c": stage(deps=["b"]), "d": stage()}
    )
    assert err.details["issue"] == "dependency cycle"
    cycle = err.details["cycle"]
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert " -> ".join(cycle) in err.message


def test_duplicate_stage_names_are_rejected_in_list_form() -> None:
    err = reject([{"name": "s1", "agent": "a1"}, {"name": "s1", "agent": "a2"}])
    assert err.details["issue"] == "duplicate stage name" and "'s1'" in err.message


def test_duplicate_stage_names_are_rejected_in_json_objects() -> None:
    with pytest.raises(InvalidWorkflow, match="'s1' appears twice"):
        load_json_strict('{"workflow": {"s1": {"agent": "a1"}, "s1": {"agent": "a2"}}}')


def test_empty_workflow_is_rejected() -> None:
    assert reject({}).details["issue"] == "empty workflow"


def test_too_many_stages_are_rejected() -> None:
    raw = {f"s{i}": stage() for i in range(6)}
    err = reject(raw, limits=Limits(max_stages=5))
    assert err.details["issue"] == "too many stages" and "at most 5" in err.message


def test_default_stage_limit_is_100() -> None:
    parse_workflow({f"s{i}": stage() for i in range(100)}, known_agents=AGENTS)
    reject({f"s{i}": stage() for i in range(101)})


def test_workflow_of_wrong_type_is_rejected() -> None:
    assert reject("stage_1").details["issue"] == "wrong type"


def test_stage_of_wrong_type_is_rejected() -> None:
    assert "'s1'" in reject({"s1": "a1"}).message


def test_missing_agent_is_rejected() -> None:
    assert reject({"s1": {"task": "x"}}).details["field"] == "workflow.s1.agent"


def test_misspelt_field_is_rejected_naming_it() -> None:
    err = reject({"s1": {"agent": "a1", "dependecies": []}})
    assert "'s1'" in err.message and "dependecies" in err.message


def test_dependencies_must_be_a_list_of_names() -> None:
    assert reject({"s1": stage(), "s2": {"agent": "a1", "dependencies": "s1"}}).details[
        "issue"
    ] == ("is not a list of stage names")


def test_invalid_stage_name_is_rejected() -> None:
    assert reject({"bad name!": stage()}).details["issue"] == "invalid stage name"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retries", -1),
        ("retries", 11),
        ("retries", "3"),
        ("retries", True),
        ("retry_backoff", -0.5),
        ("timeout_s", 0),
        ("timeout_s", 10_000),
        ("on_failure", "explode"),
        ("params", [1, 2]),
    ],
)
def test_stage_options_are_range_checked(key: str, value: Any) -> None:
    err = reject({"s1": stage(**{key: value})})
    assert err.details["field"] == f"workflow.s1.{key}" and "'s1'" in err.message


def test_stage_options_are_parsed() -> None:
    spec = parse_workflow(
        {
            "s1": stage(
                params={"x": 1}, retries=2, retry_backoff=0.5, timeout_s=9, on_failure="continue"
            )
        },
        known_agents=AGENTS,
    )
    s1 = spec.stages["s1"]
    assert (s1.params, s1.retries, s1.retry_backoff, s1.timeout_s, s1.on_failure) == (
        {"x": 1},
        2,
        0.5,
        9.0,
        "continue",
    )


def test_spec_round_trips_through_its_dict() -> None:
    from workflows.spec import spec_from_dict

    spec = parse_workflow({"a": stage(), "b": stage("a2", ["a"], retries=1)}, known_agents=AGENTS)
    assert spec_from_dict(spec.to_dict()) == spec
