"""What a submission may name, resolved when it is submitted: its task type (a built-in
template, else an operator-defined type) and the datasets its requirements and stages name.

One `Catalog` per request (or per batch): each lookup is made at most once, and only when a
submission needs it, so a built-in type naming no dataset costs no query.
"""

from __future__ import annotations

from typing import Any

from aia_engine.datasets.names import check_data_names, named_datasets
from aia_engine.db.session import Sessions
from aia_engine.errors import UnknownTaskType
from aia_engine.tasktypes import find_task_type, operator_names
from workflows.spec import WorkflowSpec
from workflows.templates import all_templates


class Catalog:
    def __init__(self, sessions: Sessions, *, client_id: str | None) -> None:
        self.sessions = sessions
        self.client_id = client_id
        self._types: dict[str, Any] = {}
        self._datasets: dict[str, bool] = {}

    def operator_workflow(self, task_type: str) -> Any:
        """The raw workflow of the operator-defined `task_type`; `UnknownTaskType` (listing
        every known type) when there is none."""
        if task_type not in self._types:
            found = find_task_type(self.sessions, task_type)
            self._types[task_type] = None if found is None else found["workflow"]
        workflow = self._types[task_type]
        if workflow is None:
            known = [*all_templates(), *operator_names(self.sessions)]
            raise UnknownTaskType(task_type, known)
        return workflow

    def check_data_names(self, requirements: dict[str, Any], spec: WorkflowSpec) -> None:
        """Every dataset named in `requirements` or a stage's params exists for this client;
        else `InvalidRequest` naming the field (see `aia_engine.datasets.names`)."""
        check_data_names(
            self.sessions, named_datasets(requirements, spec), self.client_id, self._datasets
        )
