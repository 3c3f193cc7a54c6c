"""Compile a validated workflow into a Celery canvas.

Pure: it builds signatures by task *name* (never importing the worker app), and needs no broker,
no database and no network. `workers/dispatch.py` holds the one `apply_async()`.

Shape: the Seq / Par plan of `workflows.plan` becomes chains, groups and chords:
  Stage            -> signature("aia.run_stage", kwargs={task_id, stage}, immutable=True)
  Par (last)       -> group(...)
  Seq(.., Par, X..)-> chord(header=[...the Par's parts...], body=<the rest of the Seq>)
  Seq (otherwise)  -> chain(...)

Design around Celery's canvas pitfalls:
  * Messages carry ids only (`task_id`, `stage`); inputs and outputs live in PostgreSQL, so the
    nested bodies of chains of chords (celery/celery#5000) stay a few hundred bytes a stage.
  * A stage never raises into Celery when its agent fails: `run_stage` records the failure in
    PostgreSQL and returns, so chords always join and no error callback (#5229, #6437) is needed.
    No `link_error` is used; the engine settles the task when its last stage ends.
  * Revoking a canvas does not cascade (#4667): cancellation is a status in PostgreSQL that every
    stage checks before it runs; only running stages are revoked, by their recorded Celery ids.
  * Chord counters live in the result backend and expire with `result_expires` (#5237): the
    worker refuses to start unless results outlive the longest workflow, and the reconciler
    re-dispatches a workflow whose join never came.
  * Every stage also checks in PostgreSQL that its dependencies finished before it runs, so a
    duplicate or re-dispatched message can never run a stage early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import chain, chord, group, signature
from celery.canvas import Signature

from workflows.plan import Par, Plan, Seq, Stage, plan_workflow
from workflows.spec import WorkflowSpec

RUN_STAGE = "aia.run_stage"
PRIORITY_QUEUES = {"high": "aia.high", "medium": "aia.default", "low": "aia.low"}
STAGE_QUEUES = tuple(PRIORITY_QUEUES.values())
"""The queues a stage worker consumes (webhook deliveries have `aia.webhooks` to themselves)."""


@dataclass(frozen=True)
class CompileOptions:
    default_timeout_s: float = 300.0
    hard_limit_grace_s: float = 10.0
    priority: str = "medium"


def queue_for(priority: str) -> str:
    return PRIORITY_QUEUES.get(priority, PRIORITY_QUEUES["medium"])


def compile_workflow(
    spec: WorkflowSpec,
    *,
    task_id: str,
    options: CompileOptions | None = None,
    weights: Mapping[str, float] | None = None,
) -> Signature[Any]:
    """Turn `spec` into one Celery signature that runs every stage after its dependencies."""
    options = options or CompileOptions()
    plan = plan_workflow(spec, weights=weights)
    return _Translator(spec, task_id, options).translate(plan, in_header=False)


def stage_signature(
    spec: WorkflowSpec, name: str, *, task_id: str, options: CompileOptions, keep_result: bool
) -> Signature[Any]:
    stage = spec.stages[name]
    soft = stage.timeout_s or options.default_timeout_s
    kwargs = {"task_id": task_id, "stage": name}
    return signature(
        RUN_STAGE,
        kwargs=kwargs,
        immutable=True,
        # What logs, task events and Flower show: which stage and agent (the message itself
        # carries ids only).
        shadow=stage_label(name, stage.agent),
        kwargsrepr=repr({**kwargs, "agent": stage.agent}),
        queue=queue_for(options.priority),
        soft_time_limit=soft,
        time_limit=soft + options.hard_limit_grace_s,
        # Only a stage that a chord counts needs its (tiny) result stored.
        ignore_result=not keep_result,
    )


def stage_label(stage: str, agent: str) -> str:
    """The name a stage's Celery task shows in logs and Flower: `aia.run_stage[stage:agent]`."""
    return f"{RUN_STAGE}[{stage}:{agent}]"


class _Translator:
    def __init__(self, spec: WorkflowSpec, task_id: str, options: CompileOptions) -> None:
        self.spec = spec
        self.task_id = task_id
        self.options = options

    def translate(self, plan: Plan, *, in_header: bool) -> Signature[Any]:
        if isinstance(plan, Stage):
            return stage_signature(
                self.spec,
                plan.name,
                task_id=self.task_id,
                options=self.options,
                keep_result=in_header,
            )
        if isinstance(plan, Par):
            return group([self.translate(p, in_header=in_header) for p in plan.parts])
        return self.sequence(plan, in_header=in_header)

    def sequence(self, plan: Seq, *, in_header: bool) -> Signature[Any]:
        # Build from the end: a Par followed by anything becomes a chord whose body is the rest.
        parts = list(plan.parts)
        tail = self.translate(parts.pop(), in_header=in_header)
        for part in reversed(parts):
            if isinstance(part, Par):
                header = [self.translate(p, in_header=True) for p in part.parts]
                tail = chord(header, tail)
            else:
                head = self.translate(part, in_header=False)
                tail = _chain(head, tail)
        return tail


def _chain(head: Signature[Any], tail: Signature[Any]) -> Signature[Any]:
    """chain(head, tail) flattened, so chains never nest inside chains."""
    tasks = list(head.tasks) if _kind(head) == "chain" else [head]  # type: ignore[attr-defined]
    tasks += list(tail.tasks) if _kind(tail) == "chain" else [tail]  # type: ignore[attr-defined]
    return chain(*tasks)


def _kind(sig: Mapping[str, Any]) -> str:
    return str(sig.get("subtask_type") or "task")


def canvas_shape(sig: Mapping[str, Any]) -> Any:
    """A plain rendering of a canvas: stage names in nested chain / group / chord objects."""
    kind = _kind(sig)
    if kind == "task":
        return sig["kwargs"].get("stage", sig["task"])
    if kind == "chord":
        header = sig["kwargs"]["header"]
        items = header["kwargs"]["tasks"] if isinstance(header, Mapping) else header
        return {
            "chord": {
                "header": [canvas_shape(h) for h in items],
                "body": canvas_shape(sig["kwargs"]["body"]),
            }
        }
    return {kind: [canvas_shape(t) for t in sig["kwargs"]["tasks"]]}


def guaranteed_predecessors(sig: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """For each stage, the stages the canvas guarantees have finished before it starts.

    Follows Celery's semantics: a chain starts an element when the previous one finished, a
    group starts its members together, a chord starts its body when its whole header finished.
    """
    result: dict[str, frozenset[str]] = {}

    def walk(node: Mapping[str, Any], before: frozenset[str]) -> frozenset[str]:
        kind = _kind(node)
        if kind == "task":
            name = node["kwargs"]["stage"]
            result[name] = before
            return before | {name}
        if kind == "chain":
            done = before
            for task in node["kwargs"]["tasks"]:
                done = walk(task, done)
            return done
        if kind == "group":
            return frozenset().union(*(walk(t, before) for t in node["kwargs"]["tasks"]))
        header = node["kwargs"]["header"]
        items = header["kwargs"]["tasks"] if isinstance(header, Mapping) else header
        joined = frozenset().union(*(walk(h, before) for h in items))
        return walk(node["kwargs"]["body"], joined)

    walk(sig, frozenset())
    return result
