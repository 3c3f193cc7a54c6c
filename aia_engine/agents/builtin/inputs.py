"""Where built-in agents find their data: the requirements, a sample dataset, or upstream outputs."""

from __future__ import annotations

from typing import Any

from aia_engine.agents.base import AgentContext
from aia_engine.datasets import load_dataset
from aia_engine.errors import AgentError

TEXT_FIELDS = ("text", "message", "body", "comment", "review", "content")


def find_records(
    ctx: AgentContext, *, default_source: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Records (a list of objects) and where they came from.

    Looked for in this order: the stage's params, the outputs of its dependencies, the
    workflow's requirements (`records`, `data`, or a sample `data_source`), then `default_source`.
    """
    found = _records_in(ctx.params, "params")
    if found is not None:
        return found
    for stage, output in ctx.inputs.items():
        if isinstance(output.get("records"), list):
            return _check_records(output["records"], f"{stage}.records"), f"stage:{stage}"
    found = _records_in(ctx.requirements, "requirements")
    if found is not None:
        return found
    if default_source is not None:
        return load_dataset(default_source), f"dataset:{default_source} (sample)"
    raise AgentError(
        f"stage {ctx.stage!r} has no records to work on; pass requirements.records (a list of "
        "objects), requirements.data_source (a sample dataset name) or depend on a stage that "
        "outputs records",
        field="requirements.records",
    )


def _records_in(source: Any, where: str) -> tuple[list[dict[str, Any]], str] | None:
    for key in ("records", "data"):
        if source.get(key) is not None:
            return _check_records(source[key], f"{where}.{key}"), f"{where}.{key}"
    name = source.get("data_source")
    if isinstance(name, str):
        return load_dataset(name), f"dataset:{name}"
    return None


def find_texts(ctx: AgentContext) -> tuple[list[str], list[dict[str, Any]] | None, str]:
    """Texts to score, the records they came from (if any), and where they came from."""
    texts = ctx.params.get("texts", ctx.requirements.get("texts"))
    if texts is not None:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise AgentError(
                "requirements.texts must be a list of strings", field="requirements.texts"
            )
        return texts, None, "requirements.texts"
    for output in ctx.inputs.values():
        if isinstance(output.get("texts"), list):
            return [str(t) for t in output["texts"]], None, "upstream texts"
    records, source = find_records(ctx)
    field = ctx.param("text_field") or _guess_text_field(records)
    if field is None:
        raise AgentError(
            f"stage {ctx.stage!r}: the records have no text field; set params.text_field",
            field="params.text_field",
        )
    with_text = [r for r in records if isinstance(r.get(field), str)]
    return [r[field] for r in with_text], with_text, f"{source} field {field!r}"


def _guess_text_field(records: list[dict[str, Any]]) -> str | None:
    if not records:
        return None
    for name in TEXT_FIELDS:
        if isinstance(records[0].get(name), str):
            return name
    return None


def _check_records(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise AgentError(f"{where} must be a list of objects", field=where)
    return value
