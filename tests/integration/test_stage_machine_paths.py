"""Both stage executors against the state machine, on real PostgreSQL, over generated states.

Each example writes one generated task (three stages: `a` and `b`, then `c` after both) three
times, with identical rows, and hands the same delivery (a claim) or result (a completion) to:
  * the Python executor (AIA_STAGE_FAST_PATH off),
  * the fast path as it runs in a worker (SQL first, Python for what SQL leaves to it),
  * the SQL function alone.
All three must do what `stages.machine` decides, and the two executors must leave identical
rows (task, stages, events). The SQL function alone must either do the same or answer 'slow'
having changed nothing, and only for what `stages.fastpath` says it leaves to Python.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from aia_engine.clock import utcnow
from aia_engine.db.models import StageRun, Task, TaskEvent
from aia_engine.settings import Settings
from aia_engine.stages.fastpath import (
    COMPLETIONS_IN_SQL,
    claim_in_sql,
    claim_left_to_python,
    complete_in_sql,
)
from aia_engine.stages.machine import (
    Claim,
    ClaimDecision,
    Completion,
    DependencyView,
    StageView,
    decide_claim,
    decide_completion,
)
from aia_engine.stages.run import Claimed, Outcome, claim_stage, record_result
from tests.integration.conftest import Engine
from workflows.spec import StageSpec, WorkflowSpec

CAP = 1  # AIA_MAX_STAGE_REDISPATCHES here: 0, 1 and 2 lie around it
ME, OTHER = "me", "other"
OLD = datetime(2020, 1, 1, tzinfo=utcnow().tzinfo)  # timestamps written before the call
EXAMPLES = 150
WRITTEN_LEASES: dict[str, dict[datetime, str]] = {}  # task id -> lease value -> its label


@dataclass(frozen=True)
class StageState:
    status: str
    celery_id: str | None
    lease: str | None  # "past" / "future", relative to the call
    redispatches: int
    attempt: int
    max_attempts: int
    progress: float
    may_fail: bool


@dataclass(frozen=True)
class State:
    task_status: str
    stages: dict[str, StageState]
    target: str
    missing: str | None  # "task" / "stage": deliver to what does not exist


# Weighted towards the states where the outcomes differ (an ended stage only ever says ENDED).
STATUSES = (
    ["pending"] * 3 + ["running"] * 3 + ["completed"] * 3 + ["failed", "skipped", "cancelled"]
)
stage_states = st.builds(
    StageState,
    status=st.sampled_from(STATUSES),
    celery_id=st.sampled_from([None, ME, OTHER]),
    lease=st.sampled_from([None, "past", "future"]),
    redispatches=st.sampled_from([0, 0, CAP, CAP + 1]),
    attempt=st.integers(0, 2),
    max_attempts=st.integers(1, 2),
    # 0.05 and 0.15 put the task's progress next to a rounding tie.
    progress=st.sampled_from([0.0, 0.05, 0.15, 33.3, 50.0]),
    may_fail=st.booleans(),
)
states = st.builds(
    State,
    task_status=st.sampled_from(
        ["accepted", "queued", "in_progress", "in_progress", "cancelled", "completed", "failed"]
    ),
    stages=st.fixed_dictionaries({"a": stage_states, "b": stage_states, "c": stage_states}),
    target=st.sampled_from(["c", "c", "a"]),
    missing=st.sampled_from([None] * 10 + ["task", "stage"]),
)


def spec_of(state: State) -> WorkflowSpec:
    def stage(name: str, *deps: str) -> StageSpec:
        policy = "continue" if state.stages[name].may_fail else "fail_workflow"
        return StageSpec(
            name,
            "test_noop",
            dependencies=deps,
            timeout_s=7.0,
            on_failure=policy,  # type: ignore[arg-type]
        )

    return WorkflowSpec({"a": stage("a"), "b": stage("b"), "c": stage("c", "a", "b")})


def write(engine: Engine, state: State, now: datetime) -> str:
    task_id = f"task_machine_{secrets.token_hex(6)}"
    spec = spec_of(state)
    leases = {None: None, "past": now - timedelta(minutes=10), "future": now + timedelta(hours=1)}
    WRITTEN_LEASES[task_id] = {v: k for k, v in leases.items() if k is not None}
    with engine.sessions.begin() as session:
        session.add(
            Task(
                id=task_id, client_id="machine", task_type="custom", description="d",
                priority="medium", requirements={"r": 1}, context={"c": 2},
                workflow=spec.to_dict(), assigned_agents=["test_noop"], status=state.task_status,
                progress=10.0, partial_results={}, event_seq=3, dispatch_count=1,
                updated_at=OLD, started_at=OLD, dispatched_at=OLD,
            )
        )  # fmt: skip
        session.flush()
        for position, (name, s) in enumerate(state.stages.items()):
            session.add(
                StageRun(
                    task_id=task_id, name=name, agent="test_noop", position=position,
                    dependencies=list(spec.stages[name].dependencies), status=s.status,
                    attempt=s.attempt, max_attempts=s.max_attempts, redispatches=s.redispatches,
                    celery_id=s.celery_id, lease_until=leases[s.lease], progress=s.progress,
                    output={"from": name} if s.status == "completed" else None,
                    error={"code": "E022", "message": "x"} if s.status == "failed" else None,
                    started_at=OLD if s.status != "pending" else None, updated_at=OLD,
                )
            )  # fmt: skip
    return task_id


def _when(value: datetime | None, leases: dict[datetime | None, str]) -> Any:
    if value is None or value == OLD:
        return value and "old"
    return leases.get(value, "new")


def snapshot(engine: Engine, task_id: str) -> dict[str, Any]:
    """The rows of a task, with ids dropped and each timestamp as `old` or `new`."""
    with engine.sessions.begin() as session:
        task = session.get(Task, task_id)
        assert task is not None
        rows = session.scalars(
            select(StageRun).where(StageRun.task_id == task_id).order_by(StageRun.position)
        ).all()
        events = session.scalars(
            select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.seq)
        ).all()
        stages = {}
        for r in rows:
            lease: Any = r.lease_until
            if lease in WRITTEN_LEASES[task_id]:
                lease = WRITTEN_LEASES[task_id][lease]  # as written: "past" / "future"
            elif lease is not None:
                lease = round((lease - r.updated_at).total_seconds(), 3)  # the lease it took
            stages[r.name] = (
                r.status, r.attempt, r.max_attempts, r.redispatches, r.celery_id, lease,
                r.progress, r.output, r.error, r.partial_results,
                _when(r.started_at, {}), _when(r.finished_at, {}), _when(r.updated_at, {}),
            )  # fmt: skip
        return {
            "task": (
                task.status, task.progress, task.results, task.error, task.event_seq,
                task.partial_results, _when(task.started_at, {}), _when(task.finished_at, {}),
                _when(task.updated_at, {}),
            ),
            "stages": stages,
            "events": [(e.seq, e.type, e.stage, e.payload, e.progress) for e in events],
        }  # fmt: skip


def ours(state: State, attempt: int) -> State:
    """`state` with its target running under our claim, as a run that hands in its result finds it."""
    target = replace(state.stages[state.target], status="running", celery_id=ME, attempt=attempt)
    return replace(state, stages={**state.stages, state.target: target})


# Completions: mostly by the claim that holds the stage (anything else is SUPERSEDED).
completion_states = st.one_of(
    states, st.builds(ours, states, st.integers(1, 2)), st.builds(ours, states, st.integers(1, 2))
)


def dependencies(state: State) -> list[DependencyView]:
    return [
        DependencyView(state.stages[d].status, state.stages[d].may_fail)
        for d in spec_of(state).stages[state.target].dependencies
    ]


def decide(state: State, now: datetime) -> ClaimDecision:
    s = state.stages[state.target]
    lease = {None: None, "past": now - timedelta(minutes=10), "future": now + timedelta(hours=1)}
    view = StageView(s.status, s.celery_id, lease[s.lease], s.redispatches)
    return decide_claim(
        None if state.missing == "stage" else view,
        dependencies(state),
        task_status=None if state.missing == "task" else state.task_status,
        claimant=ME,
        now=now,
        redispatch_cap=CAP,
    )


def addressed(state: State, task_id: str) -> tuple[str, str]:
    return (
        "task_absent" if state.missing == "task" else task_id,
        "z" if state.missing == "stage" else state.target,
    )


@pytest.fixture(scope="module")
def paths(engine: Engine) -> Iterator[tuple[Settings, Settings]]:
    base = engine.services.settings.model_copy(
        update={"max_stage_redispatches": CAP, "dependency_wait_s": 0.2}
    )
    yield (
        base.model_copy(update={"stage_fast_path": False}),
        base.model_copy(update={"stage_fast_path": True}),
    )
    with engine.sessions.begin() as session:
        session.execute(delete(Task).where(Task.client_id == "machine"))


def kind(result: Claimed | Outcome) -> str:
    return "run" if isinstance(result, Claimed) else result.kind


EXPECTED_KIND = {Claim.RUN: "run", Claim.RERUN: "run"}


def one(
    status: str,
    celery_id: str | None = None,
    lease: str | None = None,
    *,
    redispatches: int = 0,
    task_status: str = "in_progress",
    dep: str = "completed",
    may_fail: bool = False,
) -> State:
    """A state for an explicit example: `c` as given, its dependencies `dep`."""
    done = StageState(dep, None, None, 0, 1, 1, 0.0, may_fail)
    target = StageState(status, celery_id, lease, redispatches, 1, 2, 0.0, False)
    return State(task_status, {"a": done, "b": done, "c": target}, "c", None)


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_a_claim_does_what_the_machine_decides_on_both_paths(
    engine: Engine, paths: tuple[Settings, Settings]
) -> None:
    seen: Counter[str] = Counter()

    @PROPERTY
    @given(state=states)
    @example(state=one("pending"))  # RUN
    @example(state=one("running", OTHER, "future"))  # HELD
    @example(state=one("running", OTHER, "past"))  # RERUN: the lease ran out
    @example(state=one("running", ME, "future"))  # RERUN: our own claim, redelivered
    @example(state=one("running", OTHER, "past", redispatches=CAP))  # LOST
    @example(state=one("pending", task_status="cancelled"))  # CANCELLED
    @example(state=one("pending", dep="failed"))  # SKIPPED
    @example(state=one("pending", dep="running"))  # WAIT
    @example(state=one("pending", dep="failed", may_fail=True))  # RUN, with a failed input
    def check(state: State) -> None:
        seen[claim_once(engine, paths, state).outcome.name] += 1

    check()
    # Every row of the machine's claim table was generated (counts in the lead's note).
    print("claim outcomes:", dict(seen))
    assert set(seen) == {c.name for c in Claim}


def claim_once(engine: Engine, paths: tuple[Settings, Settings], state: State) -> ClaimDecision:
    python, fast = paths
    now = utcnow()
    decision = decide(state, now)
    ids = [write(engine, state, now) for _ in range(3)]
    before = snapshot(engine, ids[0])

    results = [
        claim_stage(engine.sessions, task_id=t, stage=s, celery_id=ME, settings=cfg)
        for cfg, (t, s) in ((python, addressed(state, ids[0])), (fast, addressed(state, ids[1])))
    ]
    expected = EXPECTED_KIND.get(decision.outcome, decision.outcome.value)
    assert [kind(r) for r in results] == [expected, expected], decision
    assert results[0] == results[1]  # the same claim: inputs, attempt, time limit...
    assert snapshot(engine, ids[0]) == snapshot(engine, ids[1])

    task_id, stage = addressed(state, ids[2])
    raw = claim_in_sql(
        engine.sessions, task_id=task_id, stage=stage, celery_id=ME,
        default_timeout_s=python.default_stage_timeout_s, grace_s=python.stage_hard_limit_grace_s,
    )  # fmt: skip
    if claim_left_to_python(decision, dependencies(state)):
        assert raw.outcome == "slow", decision
        assert snapshot(engine, ids[2]) == before
    else:
        assert raw.outcome == ("claimed" if decision.runs else decision.outcome.value)
        assert snapshot(engine, ids[2]) == snapshot(engine, ids[0])
    if decision.lost_run:
        assert snapshot(engine, ids[0])["stages"][state.target][3] == (
            state.stages[state.target].redispatches + 1
        )
    return decision


def test_a_completion_does_what_the_machine_decides_on_both_paths(
    engine: Engine, paths: tuple[Settings, Settings]
) -> None:
    seen: Counter[str] = Counter()

    done = StageState("completed", None, None, 0, 1, 1, 0.0, False)
    mine = StageState("running", ME, "future", 0, 1, 2, 0.0, False)

    def with_(status: str, a: str = "completed", b: str = "completed") -> State:
        return State(
            status,
            {"a": replace(done, status=a), "b": replace(done, status=b), "c": mine},
            "c",
            None,
        )

    @PROPERTY
    @given(state=completion_states, succeeded=st.booleans())
    @example(state=with_("in_progress"), succeeded=True)  # the last stage: the task completes
    @example(state=with_("in_progress", a="running"), succeeded=True)  # one of several
    @example(state=with_("in_progress", a="failed"), succeeded=True)  # ends with a failure
    @example(state=with_("cancelled"), succeeded=True)  # the task ended meanwhile
    @example(state=with_("in_progress"), succeeded=False)  # RETRY (attempt 1 of 2)
    @example(
        state=replace(
            with_("in_progress"), stages={"a": done, "b": done, "c": replace(mine, attempt=2)}
        ),
        succeeded=False,
    )  # FAILED
    def check(state: State, succeeded: bool) -> None:
        seen[complete_once(engine, paths, state, succeeded).name] += 1

    check()
    print("completion outcomes:", dict(seen))
    assert set(seen) == {c.name for c in Completion}


def complete_once(
    engine: Engine, paths: tuple[Settings, Settings], state: State, succeeded: bool
) -> Completion:
    python, fast = paths
    now = utcnow()
    s = state.stages[state.target]
    decision = decide_completion(
        None
        if state.missing == "stage"
        else StageView(s.status, s.celery_id, attempt=s.attempt, max_attempts=s.max_attempts),
        task_exists=state.missing != "task",
        claimant=ME,
        succeeded=succeeded,
    )
    ids = [write(engine, state, now) for _ in range(3)]
    before = snapshot(engine, ids[0])
    claimed = Claimed(spec_of(state).stages[state.target], {}, {}, {}, "d", s.attempt, 7.0)
    output = {"done": state.target} if succeeded else None
    error = None if succeeded else {"type": "Boom", "code": "E022", "message": "boom"}
    results = [
        record_result(
            engine.sessions, claimed, task_id=t, stage=st_, celery_id=ME, output=output,
            error=error, duration=0.0123, settings=cfg,
        )
        for cfg, (t, st_) in ((python, addressed(state, ids[0])), (fast, addressed(state, ids[1])))
    ]  # fmt: skip
    assert [r.kind for r in results] == [decision.value] * 2
    assert results[0] == results[1]
    assert snapshot(engine, ids[0]) == snapshot(engine, ids[1])

    if not succeeded:
        return decision  # the SQL function takes successes only
    task_id, stage = addressed(state, ids[2])
    raw = complete_in_sql(
        engine.sessions, task_id=task_id, stage=stage, celery_id=ME,
        output_json=json.dumps(output), duration=0.0123,
    )  # fmt: skip
    others = [v for k, v in state.stages.items() if k != state.target]
    settles_with_failures = all(
        o.status in ("completed", "failed", "skipped", "cancelled") for o in others
    ) and any(o.status == "failed" for o in others)
    ended_task = state.task_status in ("completed", "failed", "cancelled")
    if decision == Completion.COMPLETED and (ended_task or settles_with_failures):
        assert raw == "slow"
        assert snapshot(engine, ids[2]) == before
    else:
        assert decision in COMPLETIONS_IN_SQL and raw == decision.value
        assert snapshot(engine, ids[2]) == snapshot(engine, ids[0])
    return decision
