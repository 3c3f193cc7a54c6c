"""Where built-in agents find their data: the requirements, a named dataset, or upstream outputs.

Nothing is used that was not asked for: with no records, no named dataset and no upstream
records, an agent fails saying how to give it data (sample data only when named).
"""

from __future__ import annotations

from typing import Any

from aia_engine.agents.base import AgentContext, DatasetRows
from aia_engine.datasets import SAMPLE_PREFIX, sample_hint, sample_name, sample_records
from aia_engine.datasets.names import DATA_NAMES
from aia_engine.errors import AgentError

TEXT_FIELDS = ("text", "message", "body", "comment", "review", "content")


def find_records(ctx: AgentContext) -> tuple[list[dict[str, Any]], str]:
    """Records (a list of objects) and where they came from.

    Looked for in this order: the stage's params, the outputs of its dependencies, the
    workflow's requirements (`records`, `data`, or a dataset named by `data_source` or
    `dataset_id`). A stored dataset is read into memory, up to AIA_DATASET_AGENT_MAX_ROWS
    records (E067 past it); `find_rows` streams instead.
    """
    found, source = find_rows(ctx)
    if isinstance(found, list):
        return found, source
    return found.records(), source


def find_rows(ctx: AgentContext) -> tuple[list[dict[str, Any]] | DatasetRows, str]:
    """Like `find_records`, but a stored dataset comes as its `DatasetRows` handle, whose
    records stream from PostgreSQL: for agents that read them once, in order."""
    found = _records_in(ctx, ctx.params, "params")
    if found is not None:
        return found
    for stage, output in ctx.inputs.items():
        if isinstance(output.get("records"), list):
            return _check_records(output["records"], f"{stage}.records"), f"stage:{stage}"
    found = _records_in(ctx, ctx.requirements, "requirements")
    if found is not None:
        return found
    raise AgentError(
        f"stage {ctx.stage!r} has no records to work on; pass requirements.records (a list of "
        "objects), name a dataset in requirements.data_source (one uploaded with POST "
        f"/datasets, or a shipped sample: {sample_hint()}), or depend on a stage that "
        "outputs records",
        field="requirements.records",
    )


def _records_in(
    ctx: AgentContext, source: Any, where: str
) -> tuple[list[dict[str, Any]] | DatasetRows, str] | None:
    for key in ("records", "data"):
        if source.get(key) is not None:
            return _check_records(source[key], f"{where}.{key}"), f"{where}.{key}"
    for key in DATA_NAMES:
        name = source.get(key)
        if name is not None:
            return named_dataset(ctx, name, f"{where}.{key}")
    return None


def named_dataset(
    ctx: AgentContext, name: Any, field: str
) -> tuple[list[dict[str, Any]] | DatasetRows, str]:
    """The dataset `name`: `sample:X` is the shipped sample X (a list); a `ds_` id or a plain
    name is the task's client's own dataset, else a shared one (a `DatasetRows`), else the
    sample of that name."""
    if not isinstance(name, str):
        raise AgentError(f"{field} must be a dataset name (a string)", field=field)
    if not name.startswith(SAMPLE_PREFIX) and ctx.datasets is not None:
        rows = ctx.datasets(name)
        if rows is not None:
            return rows, f"dataset:{rows.name}"
    sample = sample_name(name)
    if sample is not None:
        return sample_records(sample), f"dataset:{sample} (sample)"
    raise AgentError(
        f"{field} names no dataset: {name!r} (was it deleted after the task was accepted?); "
        f"upload it with POST /datasets, or name a sample: {sample_hint()}",
        field=field,
        provided_value=name,
    )


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
