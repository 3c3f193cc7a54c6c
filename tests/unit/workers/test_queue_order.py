"""The worker's queue order: high work overtakes a low backlog, low work never starves."""

from __future__ import annotations

from collections import Counter, deque

import pytest

from aia_engine.settings import Settings, get_settings
from workers.queue_order import WeightedPriorityCycle, leader_schedule

QUEUES = ["aia.high", "aia.default", "aia.low"]


def drain(cycle: WeightedPriorityCycle, backlog: dict[str, deque[str]], n: int) -> list[str]:
    """Fetch `n` messages the way kombu's BRPOP does: the first non-empty queue in order."""
    taken = []
    for _ in range(n):
        for queue in cycle.consume(len(QUEUES)):
            if backlog[queue]:
                taken.append(backlog[queue].popleft())
                cycle.rotate(queue)
                break
    return taken


@pytest.fixture
def cycle() -> WeightedPriorityCycle:
    get_settings.cache_clear()
    return WeightedPriorityCycle(list(QUEUES))


def test_smooth_schedule_spreads_each_queue_by_weight() -> None:
    schedule = leader_schedule({"h": 6, "m": 3, "l": 1})
    assert Counter(schedule) == {"h": 6, "m": 3, "l": 1}
    assert "hhh" not in "".join(schedule * 2)  # interleaved, not bunched


def test_high_work_overtakes_a_low_backlog(cycle: WeightedPriorityCycle) -> None:
    backlog = {q: deque[str]() for q in QUEUES}
    backlog["aia.low"].extend(f"low{i}" for i in range(300))
    backlog["aia.high"].extend(f"high{i}" for i in range(10))
    taken = drain(cycle, backlog, 310)
    last_high = max(i for i, m in enumerate(taken) if m.startswith("high"))
    assert last_high < 13, taken[:20]
    assert len(taken) == 310


def test_low_work_still_runs_while_high_work_never_stops(cycle: WeightedPriorityCycle) -> None:
    backlog = {q: deque[str]() for q in QUEUES}
    backlog["aia.high"].extend(f"high{i}" for i in range(1000))
    backlog["aia.default"].extend(f"medium{i}" for i in range(1000))
    backlog["aia.low"].extend(f"low{i}" for i in range(1000))
    share = Counter(m.rstrip("0123456789") for m in drain(cycle, backlog, 100))
    assert share == {"high": 60, "medium": 30, "low": 10}


def test_an_empty_queue_hands_its_turn_on_by_priority(cycle: WeightedPriorityCycle) -> None:
    backlog = {q: deque[str]() for q in QUEUES}
    backlog["aia.high"].extend(f"high{i}" for i in range(1000))
    backlog["aia.low"].extend(f"low{i}" for i in range(1000))
    share = Counter(m.rstrip("0123456789") for m in drain(cycle, backlog, 100))
    assert share == {"high": 90, "low": 10}


def test_weights_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIA_QUEUE_WEIGHTS", '{"high": 1, "medium": 1, "low": 1}')
    get_settings.cache_clear()
    try:
        even = WeightedPriorityCycle(list(QUEUES))
        backlog = {q: deque(f"{q}{i}" for i in range(100)) for q in QUEUES}
        assert (
            len(
                set(Counter(m[:-1].rstrip("0123456789") for m in drain(even, backlog, 30)).values())
            )
            == 1
        )
    finally:
        get_settings.cache_clear()


def test_a_zero_or_unknown_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="starves"):
        Settings(queue_weights={"high": 1, "low": 0})
    with pytest.raises(ValueError, match="unknown priorities"):
        Settings(queue_weights={"urgent": 5})
