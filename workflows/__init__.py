"""The workflow model: spec, validation, compilation to a Celery canvas, templates.

Pure: no database, no broker, no network.
"""

from workflows.compiler import CompileOptions, compile_workflow
from workflows.spec import StageSpec, WorkflowSpec, parse_workflow

__all__ = ["CompileOptions", "StageSpec", "WorkflowSpec", "compile_workflow", "parse_workflow"]
