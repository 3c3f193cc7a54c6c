"""Series-parallel plans: a DAG of stages rewritten as nested Seq / Par blocks.

Pure. A `Seq` runs its parts one after another (each waits for all of the previous one); a
`Par` runs its parts side by side. This is exactly what Celery's chain / group / chord can
express, so the compiler only has to translate a plan.

Strategy (why it is exact where it can be):
  The stages with the *reachability* order of the DAG form a partial order. A partial order is
  series-parallel (N-free) exactly when it can be written with Seq / Par alone, and then the
  decomposition below finds that expression: split into the connected components of the
  comparability graph (independent branches -> Par) or, failing that, of the incomparability
  graph (layers every stage of one precedes every stage of the next -> Seq). So a
  series-parallel workflow compiles with no stage waiting for anything it does not depend on.

  A workflow that is not series-parallel contains an "N" (a->c, b->c, b->d, a not before d) and
  cannot be expressed without adding a wait. There we cut the stages into a down-set A and the
  rest B and run Seq(A, B): every stage of B waits for all of A, which never starts a stage
  early and adds the least waiting we can find. Candidate cuts are the thresholds of the
  longest-path depth from the sources and of the height to the sinks; each is scored by
  critical_path(A) + critical_path(B) with the stage weights (unit weights by default, or
  estimated durations) and the best one wins. Each side is then decomposed again, so only the
  N-shaped parts pay. `bench/` measures the resulting makespan against the ideal critical path
  on random DAGs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

from workflows.spec import WorkflowSpec


@dataclass(frozen=True)
class Stage:
    name: str


@dataclass(frozen=True)
class Seq:
    parts: tuple[Plan, ...]


@dataclass(frozen=True)
class Par:
    parts: tuple[Plan, ...]


Plan = Union[Stage, Seq, Par]  # noqa: UP007 - a runtime alias used in isinstance checks


def plan_workflow(spec: WorkflowSpec, *, weights: Mapping[str, float] | None = None) -> Plan:
    """Rewrite the workflow's DAG as a Seq / Par plan that never starts a stage early.

    The unweighted plan is cached on the (immutable) spec, so a template compiles once.
    """
    if weights:
        return _Decomposer(spec, weights).plan(frozenset(spec.stages))
    cached: Plan | None = spec.__dict__.get("_plan")
    if cached is None:
        cached = _Decomposer(spec, {}).plan(frozenset(spec.stages))
        object.__setattr__(spec, "_plan", cached)
    return cached


def makespan(plan: Plan, weights: Mapping[str, float] | None = None) -> float:
    """Time the plan takes when each stage takes its weight (default 1)."""
    weights = weights or {}
    if isinstance(plan, Stage):
        return weights.get(plan.name, 1.0)
    spans = [makespan(part, weights) for part in plan.parts]
    return sum(spans) if isinstance(plan, Seq) else max(spans)


def critical_path(spec: WorkflowSpec, weights: Mapping[str, float] | None = None) -> float:
    """Longest weighted dependency path: the least time any schedule can take."""
    weights = weights or {}
    finish: dict[str, float] = {}
    for name in spec.topological_order():
        start = max((finish[d] for d in spec.stages[name].dependencies), default=0.0)
        finish[name] = start + weights.get(name, 1.0)
    return max(finish.values(), default=0.0)


def is_series_parallel(spec: WorkflowSpec) -> bool:
    """True when the workflow compiles with no added waits."""
    decomposer = _Decomposer(spec, {})
    decomposer.plan(frozenset(spec.stages))
    return decomposer.cuts == 0


def stages_in(plan: Plan) -> list[str]:
    if isinstance(plan, Stage):
        return [plan.name]
    return [name for part in plan.parts for name in stages_in(part)]


class _Decomposer:
    def __init__(self, spec: WorkflowSpec, weights: Mapping[str, float]) -> None:
        self.spec = spec
        self.weights = weights
        self.cuts = 0
        order = spec.topological_order()
        self.position = {name: i for i, name in enumerate(order)}
        # below[v]: every stage that must finish before v (transitive).
        self.below: dict[str, frozenset[str]] = {}
        for name in order:
            acc: set[str] = set()
            for dep in spec.stages[name].dependencies:
                acc.add(dep)
                acc |= self.below[dep]
            self.below[name] = frozenset(acc)

    def comparable(self, a: str, b: str) -> bool:
        return a in self.below[b] or b in self.below[a]

    def plan(self, nodes: frozenset[str]) -> Plan:
        if len(nodes) == 1:
            return Stage(next(iter(nodes)))
        ordered = sorted(nodes, key=self.position.__getitem__)
        groups = _components(ordered, self.comparable)
        if len(groups) > 1:
            return _flat(Par, [self.plan(frozenset(g)) for g in groups])
        layers = _components(ordered, lambda a, b: not self.comparable(a, b))
        if len(layers) > 1:
            # Layers are totally ordered; a stage's topological position orders them.
            layers.sort(key=lambda g: min(self.position[n] for n in g))
            return _flat(Seq, [self.plan(frozenset(g)) for g in layers])
        self.cuts += 1
        first, rest = self.best_cut(ordered)
        return _flat(Seq, [self.plan(first), self.plan(rest)])

    def best_cut(self, ordered: list[str]) -> tuple[frozenset[str], frozenset[str]]:
        nodes = set(ordered)
        depth: dict[str, int] = {}
        for name in ordered:
            depth[name] = 1 + max((depth[d] for d in self.below[name] if d in nodes), default=0)
        height: dict[str, int] = {}
        for name in reversed(ordered):
            above = [m for m in ordered if name in self.below[m]]
            height[name] = 1 + max((height[m] for m in above), default=0)
        candidates: list[frozenset[str]] = []
        for t in range(1, max(depth.values())):
            candidates.append(frozenset(n for n in ordered if depth[n] <= t))
        for t in range(1, max(height.values())):
            candidates.append(frozenset(n for n in ordered if height[n] > t))
        best: tuple[float, int, frozenset[str]] | None = None
        for index, first in enumerate(candidates):
            if not first or first == nodes:
                continue
            score = self.span(first) + self.span(frozenset(nodes - first))
            if best is None or score < best[0]:
                best = (score, index, first)
        assert best is not None, "a connected, non-decomposable order always has a proper cut"
        return best[2], frozenset(nodes - best[2])

    def span(self, nodes: frozenset[str]) -> float:
        finish: dict[str, float] = {}
        for name in sorted(nodes, key=self.position.__getitem__):
            start = max((finish[d] for d in self.below[name] if d in nodes), default=0.0)
            finish[name] = start + self.weights.get(name, 1.0)
        return max(finish.values())


def _components(ordered: list[str], linked: Callable[[str, str], bool]) -> list[list[str]]:
    """Connected components of the graph on `ordered` whose edges are `linked(a, b)`."""
    parent = {n: n for n in ordered}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if find(a) != find(b) and linked(a, b):
                parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in ordered:
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _flat(kind: type[Seq] | type[Par], parts: list[Plan]) -> Plan:
    flat: list[Plan] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return kind(tuple(flat))
