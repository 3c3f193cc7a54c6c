"""`TaskWaiter`: woken by the end-of-task notification (migration 0008), not by polling."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from aia_engine.tasks.control import cancel_task
from aia_engine.tasks.wait import TaskWaiter, WaitTimeout
from tests.integration.conftest import Engine, noop, workflow

pytestmark = pytest.mark.usefixtures("worker")


def test_wait_returns_each_tasks_final_status(engine: Engine) -> None:
    ok = engine.submit(workflow({"a": noop(), "b": noop("a")}))
    bad = engine.submit(workflow({"a": noop(fail=True)}))
    with TaskWaiter.from_settings(engine.services.settings) as waiter:
        assert waiter.wait([ok, bad], timeout=30) == {ok: "completed", bad: "failed"}
        # Tasks that ended already are answered from the table at once.
        started = time.monotonic()
        assert waiter.wait([ok], timeout=30) == {ok: "completed"}
        assert time.monotonic() - started < 0.5


def test_wait_is_woken_by_the_notification_not_by_its_recheck(engine: Engine) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=1.0)}))
    # A recheck interval far beyond the test: only the notification can end the wait in time.
    with TaskWaiter.from_settings(engine.services.settings, recheck_s=60) as waiter:
        started = time.monotonic()
        assert waiter.wait([task_id], timeout=30) == {task_id: "completed"}
        waited = time.monotonic() - started
    ended = engine.get(task_id)
    assert ended["status"] == "completed"
    assert 0.9 < waited < 10


def test_a_cancelled_task_ends_the_wait(engine: Engine) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=5, steps=50), "later": noop("slow")}))
    engine.wait(task_id, statuses=("in_progress",))
    result: dict[str, str] = {}
    listening = threading.Event()
    waiter = TaskWaiter.from_settings(engine.services.settings, recheck_s=60)
    listen = waiter._listen

    def listen_and_say() -> None:  # the cancel must come while the waiter listens
        listen()
        listening.set()

    waiter._listen = listen_and_say  # type: ignore[method-assign]

    def wait() -> None:
        with waiter:
            result.update(waiter.wait([task_id], timeout=30))

    thread = threading.Thread(target=wait)
    thread.start()
    assert listening.wait(10), "the waiter did not LISTEN"
    cancel_task(engine.sessions, engine.publisher, task_id)
    thread.join(10)
    assert result == {task_id: "cancelled"}


def test_other_tasks_ending_do_not_end_the_wait(engine: Engine) -> None:
    slow = engine.submit(workflow({"slow": noop(sleep_s=2.0)}))
    quick = [engine.submit(workflow({"a": noop()})) for _ in range(5)]
    with TaskWaiter.from_settings(engine.services.settings, recheck_s=60) as waiter:
        started = time.monotonic()
        assert waiter.wait([slow], timeout=30) == {slow: "completed"}
        assert time.monotonic() - started > 1.5
        assert waiter.wait(quick, timeout=30) == dict.fromkeys(quick, "completed")


def test_a_lost_notification_is_made_up_by_the_recheck(engine: Engine) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=0.5)}))
    with TaskWaiter.from_settings(engine.services.settings, recheck_s=0.5) as waiter:
        waiter._conn.execute("UNLISTEN *")  # as if the subscription had been lost
        started = time.monotonic()
        assert waiter.wait([task_id], timeout=30) == {task_id: "completed"}
        assert time.monotonic() - started < 5


def test_timeout_says_which_tasks_are_still_running(engine: Engine) -> None:
    quick = engine.submit(workflow({"a": noop()}))
    slow = engine.submit(workflow({"slow": noop(sleep_s=3.0)}))
    with TaskWaiter.from_settings(engine.services.settings) as waiter:
        waiter.wait([quick], timeout=30)
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            waiter.wait([quick, slow], timeout=0.5)
        assert 0.4 < time.monotonic() - started < 2
        assert caught.value.pending == {slow}
        assert caught.value.ended == {quick: "completed"}
        assert waiter.wait([slow], timeout=30) == {slow: "completed"}


def test_unknown_task_ids_are_refused(engine: Engine) -> None:
    with (
        TaskWaiter.from_settings(engine.services.settings) as waiter,
        pytest.raises(KeyError, match="task_doesnotexist"),
    ):
        waiter.wait(["task_doesnotexist"], timeout=1)


def test_a_lost_connection_is_made_again_and_the_wait_goes_on(engine: Engine) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=1.5)}))

    def terminate(pid: int) -> None:
        with engine.sessions.begin() as session:
            session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

    with TaskWaiter.from_settings(engine.services.settings, recheck_s=60) as waiter:
        backend = waiter._conn.info.backend_pid
        timer = threading.Timer(0.3, terminate, args=(backend,))
        timer.start()
        started = time.monotonic()
        assert waiter.wait([task_id], timeout=30) == {task_id: "completed"}
        assert time.monotonic() - started < 10
        timer.join()
        assert waiter._conn.info.backend_pid != backend


def test_an_old_unread_notification_is_not_taken_for_the_tasks_end(engine: Engine) -> None:
    task_id = engine.submit(workflow({"slow": noop(sleep_s=1.0)}))
    with TaskWaiter.from_settings(engine.services.settings, recheck_s=60) as waiter:
        # As if an earlier wait had left this task's previous end unread on the connection
        # (a task that failed, was then retried, and is running again).
        waiter._conn.execute("LISTEN aia_task_ended")
        waiter._conn.execute(f"NOTIFY aia_task_ended, '{task_id} failed'")
        assert waiter.wait([task_id], timeout=30) == {task_id: "completed"}


def test_a_waiter_listens_only_while_it_waits(engine: Engine) -> None:
    task_id = engine.submit(workflow({"a": noop()}))

    def listening(waiter: TaskWaiter) -> list[str]:
        # pg_listening_channels() answers for its own session: ask the waiter's connection.
        return [r[0] for r in waiter._conn.execute("SELECT pg_listening_channels()").fetchall()]

    with TaskWaiter.from_settings(engine.services.settings) as waiter:
        assert listening(waiter) == []
        waiter.wait([task_id], timeout=30)
        # An idle listener that nobody reads would hold back the server's notification queue.
        assert listening(waiter) == []
