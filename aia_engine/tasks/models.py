"""The submission body: the guide's task fields plus an optional explicit workflow."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aia_engine.errors import InvalidRequest

Priority = Literal["high", "medium", "low"]
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
"""An Idempotency-Key (header or batch item): 1-200 visible ASCII characters."""


def checked_key(key: object, *, field: str, issue: str) -> str:
    """`key` if it is a valid idempotency key; else InvalidRequest naming `field`."""
    if isinstance(key, str) and IDEMPOTENCY_KEY.match(key):
        return key
    raise InvalidRequest(
        f"{field} must be 1-200 visible ASCII characters",
        field=field,
        issue=issue,
        provided_value=key[:200] if isinstance(key, str) else type(key).__name__,
    )


class TaskRequest(BaseModel):
    """What `/tasks/submit`, `/tasks/orchestrate` and `aia-engine run` accept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    task_type: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)
    priority: Priority = "medium"
    requirements: dict[str, Any] = Field(
        default_factory=dict,
        description="Input of the workflow. `data_source` (a name) or `dataset_id` (a `ds_` id or "
        "a name) names a dataset: one uploaded with POST /datasets, one an operator added, or a "
        "shipped sample `sample:NAME`; one that matches none is refused (422). `records` gives "
        "the data itself.",
    )
    context: dict[str, Any] = Field(default_factory=dict)
    agents_required: list[str] | None = Field(default=None, max_length=100)
    workflow: dict[str, Any] | list[Any] | None = None
    """Explicit stages; when absent the `task_type`'s template is used."""
