"""Workflow templates: a plain `task_type` maps to a declarative workflow in `templates/`.

Pure. A single `/tasks/submit` is a workflow too: its template picks the agents (the guide's
`assigned_agents`).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from aia_engine.errors import UnknownTaskType


@cache
def all_templates() -> dict[str, dict[str, Any]]:
    """Every template shipped in `workflows/templates/`, by task type."""
    found: dict[str, dict[str, Any]] = {}
    for entry in resources.files("workflows").joinpath("templates").iterdir():
        if entry.name.endswith(".json"):
            found[entry.name.removesuffix(".json")] = json.loads(entry.read_text("utf-8"))
    return found


def template_workflow(task_type: str) -> dict[str, Any]:
    """The raw workflow body of `task_type`'s template (validate it with `parse_workflow`)."""
    templates = all_templates()
    if task_type not in templates:
        raise UnknownTaskType(task_type, list(templates))
    workflow: dict[str, Any] = json.loads(json.dumps(templates[task_type]["workflow"]))
    return workflow
