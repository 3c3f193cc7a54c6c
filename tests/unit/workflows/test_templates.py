from __future__ import annotations

import pytest

from aia_engine.agents import known_agents
from aia_engine.errors import UnknownTaskType
from workflows.spec import parse_workflow
from workflows.templates import all_templates, template_workflow


@pytest.mark.parametrize(
    "task_type", ["data_analysis", "sentiment_analysis", "complex_analysis", "report"]
)
def test_required_templates_exist_and_validate(task_type: str) -> None:
    spec = parse_workflow(template_workflow(task_type), known_agents=known_agents())
    assert spec.stages


def test_every_shipped_template_validates() -> None:
    for name in all_templates():
        parse_workflow(template_workflow(name), known_agents=known_agents())


def test_guides_submit_example_gets_the_guides_agents() -> None:
    spec = parse_workflow(template_workflow("data_analysis"), known_agents=known_agents())
    assert spec.agents == ["data_analysis_agent", "sentiment_analysis_agent"]


def test_unknown_task_type_lists_known_ones() -> None:
    with pytest.raises(UnknownTaskType) as info:
        template_workflow("astrology")
    assert "'astrology'" in info.value.message and "complex_analysis" in info.value.message
