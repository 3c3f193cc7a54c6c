"""The SDK's generated files are up to date: the committed OpenAPI snapshot is the server's
document; models.py and _sync/ are what clients/python/tools/generate.py makes of the committed
snapshot and _async/; and, checked without the generator, every schema has its model."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from aia_client import models
from pydantic import BaseModel

from api.openapi import openapi_document

TOOL = Path(__file__).resolve().parents[3] / "clients" / "python" / "tools" / "generate.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aia_client_generate", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()
SDK: Path = tool.SDK
FIX = f"run `{tool.COMMAND}` and commit the result"


def parts(document: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document by part: each path, each schema, and the rest by key."""
    components = dict(document.get("components", {}))
    found = {f"path {path}": v for path, v in document.get("paths", {}).items()}
    found |= {f"schema {name}": v for name, v in components.pop("schemas", {}).items()}
    found |= {k: v for k, v in document.items() if k not in ("paths", "components")}
    return found | {"components": components}


def changed_parts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The parts (see `parts`) in which two OpenAPI documents differ."""
    a, b = parts(old), parts(new)
    return sorted(part for part in a.keys() | b.keys() if a.get(part) != b.get(part))


def test_the_committed_openapi_snapshot_is_the_servers_document() -> None:
    committed = (SDK / tool.OPENAPI).read_text()
    changed = changed_parts(json.loads(committed), openapi_document())
    assert not changed, f"clients/python/openapi.json is out of date in {changed}: {FIX}"
    assert committed == tool.openapi_text(), f"clients/python/openapi.json is not as written: {FIX}"


def test_models_are_generated_from_the_committed_snapshot() -> None:
    expected = tool.models_text((SDK / tool.OPENAPI).read_text())
    assert (SDK / tool.MODELS).read_text() == expected, f"aia_client/models.py differs: {FIX}"


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    expected: dict[str, str] = tool.sync_files(SDK / tool.ASYNC)
    committed = {
        str(path.relative_to(SDK / tool.SYNC)): path.read_text()
        for path in sorted((SDK / tool.SYNC).rglob("*.py"))
    }
    differing = sorted(
        name
        for name in expected.keys() | committed.keys()
        if expected.get(name) != committed.get(name)
    )
    assert not differing, f"aia_client/_sync/ differs in {differing}: {FIX}"


def test_every_schema_has_a_model_with_its_fields_and_required_ones() -> None:
    """Read off the document and pydantic, not the generator: a schema the generator renamed,
    split or dropped, or a field it made optional, fails here."""
    schemas: dict[str, dict[str, Any]] = openapi_document()["components"]["schemas"]
    problems = []
    for name, schema in sorted(schemas.items()):
        model = getattr(models, name, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            problems.append(f"{name}: no model")
            continue
        fields, properties = set(model.model_fields), set(schema.get("properties", {}))
        if fields != properties:
            problems.append(
                f"{name}: fields {sorted(fields - properties)} not in the schema, {sorted(properties - fields)} not in the model"
            )
        required = {field for field, info in model.model_fields.items() if info.is_required()}
        wanted = set(schema.get("required", []))
        if required != wanted:
            problems.append(
                f"{name}: required only in the model {sorted(required - wanted)}, only in the schema {sorted(wanted - required)}"
            )
        if model.model_config.get("extra") != "allow":
            problems.append(f"{name}: extra fields not allowed")
    classes = {
        name
        for name, value in vars(models).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == models.__name__
    }
    problems += [f"{name}: a model with no schema" for name in sorted(classes - schemas.keys())]
    assert not problems, problems


TASK_VIEW = {
    "task_id": "task_1",
    "task_type": "data_analysis",
    "description": "",
    "priority": "medium",
    "status": "in_progress",
    "progress": 40.0,
    "created_at": "2026-11-28T06:00:00Z",
    "updated_at": "2026-11-28T06:00:01Z",
    "started_at": None,
    "finished_at": None,
    "estimated_completion": None,
    "assigned_agents": [],
    "partial_results": {},
    "stages": [],
}


def test_a_field_a_newer_server_adds_is_kept_not_refused() -> None:
    view = models.TaskView.model_validate({**TASK_VIEW, "queue_position": 3})
    assert view.progress == 40.0
    assert view.model_extra == {"queue_position": 3}


def test_the_schemas_bounds_do_not_reject_an_answer() -> None:
    """A newer server may widen a limit (a four-digit error code, a longer id); the server
    validates what it is sent, and the models only read."""
    error = models.ErrorBody.model_validate(
        {"type": "x", "message": "m", "code": "E1000", "details": {}, "timestamp": "t",
         "request_id": "r", "documentation_url": "u"}
    )  # fmt: skip
    assert error.code == "E1000"
    details = models.ActivityDetails.model_validate({"status_code": 700, "endpoint": "x" * 600})
    assert details.status_code == 700


def test_bounds_leave_out_only_validation_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "pattern": "^a$", "maxLength": 3},
            "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": None},
        },
        "examples": [{"pattern": "a", "minimum": 1}],
    }
    assert tool.without_bounds(schema) == {
        "type": "object",
        "properties": {
            "pattern": {"type": "string"},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        },
        "examples": [{"pattern": "a", "minimum": 1}],
    }


def test_check_names_stale_and_stray_files_and_writing_fixes_them(tmp_path: Path) -> None:
    sdk = tmp_path / "python"
    shutil.copytree(SDK, sdk, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (sdk / tool.MODELS).write_text("# edited by hand\n")
    (sdk / tool.SYNC / "client.py").unlink()
    (sdk / tool.SYNC / "stray.py").write_text("")
    assert tool.differences(sdk) == [tool.MODELS, f"{tool.SYNC}/client.py", f"{tool.SYNC}/stray.py"]
    tool.write(sdk)
    assert tool.differences(sdk) == []
    assert (sdk / tool.MODELS).read_text() == (SDK / tool.MODELS).read_text()
