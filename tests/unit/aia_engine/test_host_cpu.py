"""Host CPU readings: none until an interval is measured, one baseline per process."""

from __future__ import annotations

import threading
import time
from collections import namedtuple

import psutil

from aia_engine.metrics.host import MIN_INTERVAL_S, CpuSampler, busy_share

Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def times(busy: float, idle: float, guest: float = 0.0) -> Times:
    return Times(busy, 0.0, 0.0, idle, 0.0, 0.0, 0.0, 0.0, guest, 0.0)


def test_busy_share_counts_busy_over_all_time_and_nothing_over_no_time() -> None:
    assert busy_share(times(10, 30), times(13, 39)) == 25.0
    assert busy_share(times(10, 30, guest=1), times(13, 39, guest=3)) == 25.0  # guest is in user
    assert busy_share(times(10, 30), times(10, 30)) is None
    assert busy_share(times(10, 30), times(9, 31)) == 0.0  # a counter that went back is zero


def test_no_reading_until_an_interval_was_measured() -> None:
    clock = [100.0]
    sample = [times(0, 0)]
    sampler = CpuSampler(clock=lambda: clock[0], cpu_times=lambda: sample[0])
    assert sampler.read() is None  # the first reading only starts the interval
    clock[0] += MIN_INTERVAL_S / 2
    sample[0] = times(1, 1)
    assert sampler.read() is None  # too short an interval to measure anything yet
    clock[0] += MIN_INTERVAL_S
    sample[0] = times(3, 1)
    assert sampler.read() == 75.0
    clock[0] += MIN_INTERVAL_S / 2
    sample[0] = times(5, 9)
    assert sampler.read() == 75.0  # too soon: the last measured value, not a new guess
    clock[0] += MIN_INTERVAL_S
    assert sampler.read() == 20.0  # since the last reading: 5-3 busy, 9-1 idle


def test_primed_sampler_measures_in_a_thread_that_never_read_before() -> None:
    sampler = CpuSampler()
    sampler.prime()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # keep one core busy
        pass
    found: list[float | None] = []
    thread = threading.Thread(target=lambda: found.append(sampler.read()))
    thread.start()
    thread.join()
    # half a second of one core busy is a share of every core of at least this much
    assert found[0] is not None and found[0] >= 0.8 * 100.0 / psutil.cpu_count()
