"""What `/health` reports from its background checks: the grace period, recovery, hung checks."""

from __future__ import annotations

from aia_engine.ops.health import HEALTHY, HealthMonitor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def monitor(clock: Clock, grace: float = 10.0) -> HealthMonitor:
    return HealthMonitor(
        {"database": lambda: HEALTHY, "redis": lambda: HEALTHY},
        interval_s=1.0,
        grace_s=grace,
        clock=clock,
    )


def test_before_any_check_nothing_is_claimed_healthy() -> None:
    m = monitor(Clock())
    report = m.report()
    assert report.failing == ["database", "redis"]
    assert report.services["redis"].startswith("unhealthy: no check completed")


def test_a_failure_is_hidden_for_the_grace_period_then_shown_and_recovery_is_at_once() -> None:
    clock = Clock()
    m = monitor(clock)
    m.check_all()
    assert m.report().failing == []
    m.record("redis", "unhealthy: ConnectionError")
    for step in range(10):  # failing for 0..9 s, checked every second
        clock.now += 0.999 if step == 9 else 1.0
        m.record("redis", "unhealthy: ConnectionError")
        m.record("database", HEALTHY)
        assert m.report().services["redis"] == HEALTHY, step
    clock.now += 0.01
    m.record("redis", "unhealthy: ConnectionError")
    report = m.report()
    assert report.failing == ["redis"] and report.services["redis"] == "unhealthy: ConnectionError"
    m.record("redis", HEALTHY)
    assert m.report().failing == []
    # A new failure starts a new grace period.
    m.record("redis", "unhealthy: TimeoutError")
    clock.now += 5
    m.record("redis", "unhealthy: TimeoutError")
    m.record("database", HEALTHY)
    assert m.report().failing == []


def test_a_dependency_never_seen_healthy_is_reported_at_once() -> None:
    clock = Clock()
    m = monitor(clock)
    m.record("database", HEALTHY)
    m.record("redis", "unhealthy: ConnectionError")
    assert m.report().failing == ["redis"]


def test_a_check_that_hangs_counts_as_failing_after_the_grace_period() -> None:
    clock = Clock()
    m = monitor(clock)
    m.check_all()
    clock.now += 1.0 + 10.0  # due after 1 s; no result for the grace period after that
    assert m.report().failing == []
    clock.now += 0.1
    m.record("database", HEALTHY)
    report = m.report()
    assert report.failing == ["redis"] and report.services["redis"].startswith(
        "unhealthy: no answer"
    )


def test_worker_count_is_the_last_good_one_while_within_grace() -> None:
    clock = Clock()
    answers = iter([2, 0, 0])
    m = HealthMonitor(
        {}, count_workers=lambda: next(answers), interval_s=1.0, grace_s=5.0, clock=clock
    )
    m.check("workers")
    assert m.report().workers == 2
    clock.now += 1
    m.check("workers")
    assert m.report().workers == 2 and m.report().failing == []
    clock.now += 5
    m.check("workers")
    report = m.report()
    assert report.workers == 0 and report.services["workers"] == "unhealthy: no worker answered"
