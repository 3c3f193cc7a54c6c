"""Host figures for `/metrics`: CPU use measured between readings, memory and disk use now.

psutil's non-blocking `cpu_percent()` keeps its baseline per thread and answers a meaningless
0.0 on a thread's first call; API requests run on a pool of threads, so first readings were 0.0
in every thread. `CpuSampler` keeps one baseline per process: a reading is the host's CPU use
(all cores, as psutil counts busy time) since the previous reading, or since `prime()`, which
the API calls when it starts. Until an interval of at least `MIN_INTERVAL_S` has been measured
there is no reading (None); a reading asked for sooner repeats the last one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

MIN_INTERVAL_S = 0.1
"""psutil's advice for non-blocking readings: shorter intervals hold too few clock ticks."""

_NOT_TIME = ("guest", "guest_nice")  # already counted in user and nice (Linux)
_IDLE = ("idle", "iowait")


def busy_share(before: Any, after: Any) -> float | None:
    """Percent of CPU time spent busy between two `psutil.cpu_times()` samples (None if no
    time passed). Fields that went backwards (counters reset) count as zero."""
    total = busy = 0.0
    for name in after._fields:
        if name in _NOT_TIME:
            continue
        delta = max(0.0, getattr(after, name) - getattr(before, name))
        total += delta
        if name not in _IDLE:
            busy += delta
    return round(100.0 * busy / total, 1) if total > 0 else None


class CpuSampler:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_times: Callable[[], Any] = psutil.cpu_times,
    ) -> None:
        self._clock, self._cpu_times = clock, cpu_times
        self._lock = threading.Lock()
        self._since: tuple[float, Any] | None = None
        self._last: float | None = None

    def prime(self) -> None:
        """Start measuring now, unless already measuring."""
        with self._lock:
            if self._since is None:
                self._since = (self._clock(), self._cpu_times())

    def read(self) -> float | None:
        with self._lock:
            now, sample = self._clock(), self._cpu_times()
            if self._since is None:
                self._since = (now, sample)
                return None
            began, before = self._since
            if now - began < MIN_INTERVAL_S:
                return self._last
            share = busy_share(before, sample)
            if share is None:
                return self._last
            self._since, self._last = (now, sample), share
            return share


HOST_CPU = CpuSampler()


def host_figures() -> dict[str, float | None]:
    """`cpu_usage` (None until measured), `memory_usage` and `disk_usage` in percent."""
    return {
        "cpu_usage": HOST_CPU.read(),
        "memory_usage": psutil.virtual_memory().percent,
        "disk_usage": psutil.disk_usage(os.path.abspath(os.sep)).percent,
    }
