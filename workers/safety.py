"""The worker refuses to start with settings that could lose or duplicate accepted work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aia_engine.settings import Settings


class UnsafeWorkerConfig(RuntimeError):
    """Raised at worker start when the Celery configuration is unsafe for the engine."""


def unsafe_settings(conf: Mapping[str, Any], settings: Settings) -> list[str]:
    """Every reason the configuration is unsafe (empty when it is safe). Pure."""
    problems = []
    if not conf.get("task_acks_late"):
        problems.append("task_acks_late must be True: a stage killed mid-run must be redelivered")
    if not conf.get("task_reject_on_worker_lost"):
        problems.append(
            "task_reject_on_worker_lost must be True: a lost worker's stage must be requeued"
        )
    if conf.get("worker_prefetch_multiplier") != 1:
        problems.append(
            "worker_prefetch_multiplier must be 1: prefetched stages wait behind long ones"
        )
    visibility = float((conf.get("broker_transport_options") or {}).get("visibility_timeout", 3600))
    longest = settings.max_stage_timeout_s + settings.stage_hard_limit_grace_s
    if visibility <= longest:
        problems.append(
            f"broker visibility_timeout ({visibility:g}s) must exceed the longest stage time limit "
            f"({longest:g}s), or running stages are delivered twice"
        )
    expires = conf.get("result_expires")
    expires_s = (
        float(expires.total_seconds())
        if expires is not None and hasattr(expires, "total_seconds")
        else float(expires or 0)
    )
    if expires_s <= settings.max_workflow_duration_s:
        problems.append(
            f"result_expires ({expires_s:g}s) must exceed the longest workflow "
            f"({settings.max_workflow_duration_s:g}s): chord counters expire with it (celery#5237)"
        )
    return problems


def check_worker(conf: Mapping[str, Any], settings: Settings) -> None:
    problems = unsafe_settings(conf, settings)
    if problems:
        raise UnsafeWorkerConfig("refusing to start the worker:\n  - " + "\n  - ".join(problems))
