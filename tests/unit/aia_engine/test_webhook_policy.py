"""The retry policy after a delivery attempt, and the public event body. Pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aia_engine.events.body import parse_event_id, public_event
from aia_engine.settings import Settings
from aia_engine.webhooks.policy import backoff_s, decide, retry_after_s

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
S = Settings(
    webhook_backoff_base_s=10,
    webhook_backoff_max_s=3600,
    webhook_retry_window_s=86_400,
    webhook_retry_after_max_s=600,
)


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 20):
        full = min(3600.0, 10 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = backoff_s(attempt, S, rng)
            assert full / 2 <= delay <= full
    delays = {round(backoff_s(3, S, rng), 3) for _ in range(20)}
    assert len(delays) > 10  # jittered, not one value


def test_default_schedule_spans_about_a_day() -> None:
    settings = Settings()
    elapsed, attempt = 0.0, 1
    rng = random.Random(7)
    while True:
        d = decide(
            status_code=500, retry_after=None, attempt=attempt,
            first_created_at=NOW, now=NOW + timedelta(seconds=elapsed), settings=settings, rng=rng,
        )  # fmt: skip
        if d.kind == "failed":
            break
        assert d.next_attempt_at is not None
        elapsed = (d.next_attempt_at - NOW).total_seconds()
        attempt += 1
    assert 20 * 3600 <= elapsed <= 24 * 3600 and 10 <= attempt <= 30


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_is_delivered(code: int) -> None:
    d = decide(
        status_code=code, retry_after=None, attempt=1, first_created_at=NOW, now=NOW, settings=S
    )
    assert d.kind == "delivered" and d.next_attempt_at is None


def test_410_means_gone() -> None:
    assert (
        decide(
            status_code=410, retry_after=None, attempt=1, first_created_at=NOW, now=NOW, settings=S
        ).kind
        == "gone"
    )


@pytest.mark.parametrize("code", [None, 301, 302, 307, 400, 401, 404, 500, 502])
def test_other_outcomes_back_off(code: int | None) -> None:
    d = decide(
        status_code=code,
        retry_after="999",
        attempt=2,
        first_created_at=NOW,
        now=NOW,
        settings=S,
        rng=random.Random(3),
    )
    assert d.kind == "retry" and d.next_attempt_at is not None
    assert (
        timedelta(seconds=10) <= d.next_attempt_at - NOW <= timedelta(seconds=20)
    )  # Retry-After ignored


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120), ("0", 0), ("Fri, 27 Nov 2026 12:05:00 GMT", 300), ("99999", 600)],
)
def test_retry_after_is_honoured_on_429_and_503(header: str, seconds: int) -> None:
    for code in (429, 503):
        d = decide(
            status_code=code,
            retry_after=header,
            attempt=1,
            first_created_at=NOW,
            now=NOW,
            settings=S,
        )
        assert d.kind == "retry" and d.next_attempt_at == NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "Fri, 27 Nov 2026", "\u00b2", "\u0663"])
def test_unreadable_retry_after_falls_back_to_backoff(header: str | None) -> None:
    assert retry_after_s(header, now=NOW) is None or header == ""
    d = decide(
        status_code=429,
        retry_after=header,
        attempt=1,
        first_created_at=NOW,
        now=NOW,
        settings=S,
        rng=random.Random(1),
    )
    assert d.kind == "retry" and timedelta(seconds=5) <= d.next_attempt_at - NOW <= timedelta(
        seconds=10
    )  # type: ignore[operator]


def test_gives_up_past_the_retry_window() -> None:
    late = NOW + timedelta(seconds=86_400 - 5)
    d = decide(
        status_code=500, retry_after=None, attempt=9, first_created_at=NOW, now=late, settings=S
    )
    assert d.kind == "failed"


def test_event_ids_round_trip_and_reject_junk() -> None:
    assert parse_event_id("evt_42") == 42 and parse_event_id("42") == 42
    for junk in ("", "evt_", "evt_-1", "x42", "4" * 40, "evt_1.5", "\u00b2", "evt_\u0663"):
        assert parse_event_id(junk) is None


def test_public_event_has_what_the_guides_handler_reads() -> None:
    task = {"id": "task_1", "progress": 50.0, "results": {"a": 1}, "error": {"message": "boom"}}
    common = {"seq": 3, "created_at": NOW, "stage": None, "payload": {}, "task": task}
    done = public_event(pos=7, event_type="task.completed", **common)
    assert done == {
        "event_id": "evt_7", "event_type": "task.completed", "timestamp": "2026-11-27T12:00:00Z",
        "sequence": 3,
        "data": {"task_id": "task_1", "status": "completed", "progress": 100.0, "results": {"a": 1}},
    }  # fmt: skip
    failed = public_event(pos=8, event_type="task.failed", **common)
    assert failed["data"]["error"] == {"message": "boom"} and failed["data"]["status"] == "failed"
    stage = public_event(
        pos=9, event_type="stage.failed", seq=4, created_at=NOW, stage="s1",
        payload={"error": {"message": "x"}, "attempt": 2}, task=task,
    )  # fmt: skip
    assert stage["data"] | {} == {
        "task_id": "task_1", "status": "in_progress", "progress": 50.0, "stage": "s1",
        "error": {"message": "x"}, "attempt": 2,
    }  # fmt: skip
