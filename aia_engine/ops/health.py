"""The state `GET /health` reports, kept fresh by background checks.

Each dependency (PostgreSQL, Redis, the workers) is checked by its own thread every
`interval_s`, off the request path: a request only reads the last results, so it never waits
on a database round trip or a worker ping (which waits its whole timeout for replies).

A failure is reported only once it has lasted `grace_s`: a worker that misses one ping under
load, or a dependency that blips for a second, does not make a load balancer take the API out
of rotation. Recovery is reported at once. A dependency never seen healthy since the process
started is reported as it is (there is no good state to keep showing), and a check that has
not completed for longer than the grace period (hung on a dead host) counts as a failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger("aia_engine.health")  # the name operators filter on
HEALTHY = "healthy"
Check = Callable[[], str]
"""Runs one check: returns HEALTHY or "unhealthy: <why>" (or raises, which is unhealthy)."""


@dataclass
class _Service:
    last: str | None = None
    """The last completed check's result (None before the first one)."""
    checked_at: float | None = None
    failing_since: float | None = None
    """When the current run of failed checks began (None while healthy)."""
    ever_healthy: bool = False
    workers: int = 0
    """Workers that answered the last successful ping."""


@dataclass
class HealthReport:
    services: dict[str, str]
    """What each dependency is reported as: "healthy" or "unhealthy: <why>"."""
    workers: int
    failing: list[str] = field(default_factory=list)


class HealthMonitor:
    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        count_workers: Callable[[], int] | None = None,
        interval_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = dict(checks)
        self.count_workers = count_workers
        self.interval_s, self.grace_s, self.clock = interval_s, grace_s, clock
        names = [*self.checks, *(["workers"] if count_workers is not None else [])]
        self.states = {name: _Service() for name in names}
        self.started = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- checking (background) -----------------------------------------------------------
    def check(self, name: str) -> None:
        """Run one check now and record its result."""
        workers = 0
        try:
            if name == "workers":
                assert self.count_workers is not None
                workers = self.count_workers()
                result = HEALTHY if workers else "unhealthy: no worker answered"
            else:
                result = self.checks[name]()
        except Exception as exc:
            result = f"unhealthy: {type(exc).__name__}"
        self.record(name, result, workers=workers)

    def record(self, name: str, result: str, *, workers: int = 0) -> None:
        now = self.clock()
        with self._lock:
            state = self.states[name]
            if result == HEALTHY:
                state.failing_since, state.ever_healthy, state.workers = None, True, workers
            elif state.failing_since is None:
                state.failing_since = now
                log.warning("health: %s %s (reported after %.0fs)", name, result, self.grace_s)
            state.last, state.checked_at = result, now

    def check_all(self) -> None:
        for name in self.states:
            self.check(name)

    def _loop(self, name: str) -> None:
        while not self._stop.is_set():
            began = self.clock()
            self.check(name)
            self._stop.wait(max(0.0, self.interval_s - (self.clock() - began)))

    def start(self, *, first_round_s: float = 5.0) -> None:
        """One thread per dependency; waits (up to `first_round_s`) for every first result,
        so a process that starts serving knows its state."""
        for name in self.states:
            thread = threading.Thread(
                target=self._loop, args=(name,), name=f"aia-health-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + first_round_s
        while time.monotonic() < deadline and any(
            s.checked_at is None for s in self.states.values()
        ):
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    # -- reporting (the request path: reads only) -----------------------------------------
    def report(self) -> HealthReport:
        now = self.clock()
        services: dict[str, str] = {}
        workers = 0
        with self._lock:
            for name, state in self.states.items():
                services[name] = self._reported(state, now)
                if name == "workers":
                    workers = state.workers if services[name] == HEALTHY else 0
        failing = [name for name, shown in services.items() if shown != HEALTHY]
        return HealthReport(services, workers, failing)

    def _reported(self, state: _Service, now: float) -> str:
        # A check still running counts as failing from when it was due, so a hung one shows.
        overdue = now - (state.checked_at or self.started) - self.interval_s
        if state.last is None:
            return f"unhealthy: no check completed in {now - self.started:.0f}s"
        if overdue > self.grace_s:
            return f"unhealthy: no answer for {overdue + self.interval_s:.0f}s"
        if state.last == HEALTHY:
            return HEALTHY
        assert state.failing_since is not None
        if not state.ever_healthy or now - state.failing_since >= self.grace_s:
            return state.last
        return HEALTHY  # failing for less than the grace period: still the last good state
