"""`aia-engine batch submit`: resumable after SIGINT, progress bar, bad lines, --wait results."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select, update

from aia_engine.db.models import StageRun, Task
from tests.conftest import flush_redis, popen_to_log
from tests.integration.api.conftest import Credentials
from tests.integration.conftest import ROOT, Services, WorkerFactory, _empty_redis_db, _stop
from tests.integration.ops.conftest import ApiServer, log_of, tiers, wait_for

NOOP = {"task_type": "batch", "workflow": {"only": {"agent": "noop"}}}


def tasks_of(services: Services, client_id: str) -> int:
    with services.sessions.begin() as session:
        return int(session.scalar(select(func.count()).where(Task.client_id == client_id)) or 0)


def batch_env(api: ApiServer, creds: Credentials) -> dict[str, str]:
    return {
        **api.env,
        "AIA_API_URL": api.url,
        "AIA_CLIENT_ID": creds.client_id,
        "AIA_CLIENT_SECRET": creds.client_secret,
    }


def cancel_all(services: Services, client_id: str) -> None:
    """Take this test's queued tasks out of the reconciler's sight (no worker ever runs them)."""
    with services.sessions.begin() as session:
        ids = select(Task.id).where(Task.client_id == client_id).scalar_subquery()
        session.execute(
            update(StageRun).where(StageRun.task_id.in_(ids)).values(status="cancelled")
        )
        session.execute(update(Task).where(Task.client_id == client_id).values(status="cancelled"))


@pytest.fixture
def idle_api(services: Services) -> Iterator[ApiServer]:
    """An API on a Redis database of its own: nothing consumes what it queues."""
    private = _empty_redis_db(services.redis_url)
    api = ApiServer(
        services, "batch-api", REDIS_URL=private, AIA_RATE_LIMIT_TIERS=tiers(100_000),
        AIA_API_WORKERS="2",
    )  # fmt: skip
    yield api
    api.stop()
    flush_redis(private)


def test_a_10000_line_file_interrupted_half_way_resumes_to_exactly_10000_tasks(
    services: Services, idle_api: ApiServer, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client(name="batch script", tier="enterprise")
    path = services.tmp / "ten-thousand.jsonl"
    path.write_text("".join(json.dumps({**NOOP, "description": f"row {n}"}) + "\n"
                            for n in range(10_000)))  # fmt: skip
    env = batch_env(idle_api, creds)
    command = ["aia-engine", "batch", "submit", str(path), "--no-progress"]
    try:
        # Given a run interrupted with SIGINT (Ctrl-C) part way through
        log = services.tmp / "batch-first.log"
        # (chunks of 250: past the server's 100 a request, so the CLI halves them; the keys do
        # not depend on the grouping, which the second run changes)
        first = popen_to_log([*command, "--chunk-size", "250"], env=env, cwd=ROOT, log=log)
        first.log_path = log  # type: ignore[attr-defined]
        wait_for(lambda: tasks_of(services, creds.client_id) >= 2_500, first, "a quarter sent")
        first.send_signal(signal.SIGINT)
        assert first.wait(60) == 130, log_of(first)
        interrupted_at = tasks_of(services, creds.client_id)
        assert 2_500 <= interrupted_at < 10_000, interrupted_at
        assert "run the same command again to resume" in log_of(first)

        # When the same command runs again
        second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=600)  # fmt: skip

        # Then exactly 10,000 tasks exist, one per line
        assert second.returncode == 0, second.stdout + second.stderr
        assert tasks_of(services, creds.client_id) == 10_000
        with services.sessions.begin() as session:
            keys = session.scalar(
                select(func.count(func.distinct(Task.idempotency_key))).where(
                    Task.client_id == creds.client_id
                )
            )
        assert keys == 10_000
        summary = second.stdout
        assert f"{10_000 - interrupted_at} accepted, " in summary, summary
        assert f"{interrupted_at} already submitted" in summary, summary
    finally:
        cancel_all(services, creds.client_id)


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdout and stderr; its exit code and output."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=terminal,
                            stderr=terminal, close_fds=True)  # fmt: skip
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(30), b"".join(chunks).decode(errors="replace")


def test_progress_bar_renders_in_a_terminal_and_bad_lines_are_reported_by_number(
    services: Services, idle_api: ApiServer, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client(name="pty script", tier="enterprise")
    lines = [json.dumps({**NOOP, "description": f"row {n}"}) for n in range(2_000)]
    lines[6] = '{"task_type": "batch", "workflow": '  # line 7: cut short
    lines[99] = json.dumps({"task_type": "batch", "workflow": {"a": {"agent": "ghost"}}})
    lines[499] = "[1, 2]"  # line 500: not an object
    lines[1499] = json.dumps({**NOOP, "priority": "urgent"})  # line 1500
    path = services.tmp / "with-bad-lines.jsonl"
    path.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is not a task
    try:
        code, out = run_in_pty(
            ["aia-engine", "batch", "submit", str(path), "--chunk-size", "50"],
            batch_env(idle_api, creds),
        )
    finally:
        cancel_all(services, creds.client_id)
    # The bar: redrawn in place, with counts, a percentage, the rate and an ETA
    assert code == 1, out
    frames = [f for f in out.split("\r") if f.startswith("submitting [")]
    assert len(frames) >= 2, out
    assert "2000/2000 100.0%" in frames[-1] and "/s ETA" in frames[-1], frames[-1]
    assert "#" * 28 in frames[-1]
    # The summary: what was accepted, and each bad line by its number and reason
    assert "2000 lines" in out and "1996 accepted, 0 already submitted, 4 rejected" in out, out
    assert "line 7 rejected: not valid JSON" in out
    assert "line 100 rejected: E002 stage 'a': unknown agent 'ghost'" in out
    assert "line 500 rejected: a task is a JSON object, not list" in out
    assert "line 1500 rejected: E001" in out and "priority" in out
    assert tasks_of(services, creds.client_id) == 1996


def test_forced_progress_without_a_terminal_and_a_clear_error_without_credentials(
    services: Services, idle_api: ApiServer, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client(name="forced", tier="enterprise")
    path = services.tmp / "small.jsonl"
    path.write_text(json.dumps(NOOP) + "\n")
    env = batch_env(idle_api, creds)
    try:
        forced = subprocess.run(["aia-engine", "batch", "submit", str(path), "--progress"],
                                env=env, cwd=ROOT, capture_output=True, timeout=120)  # fmt: skip
    finally:
        cancel_all(services, creds.client_id)
    stderr = forced.stderr.decode()
    assert forced.returncode == 0, stderr
    assert "\rsubmitting [" in stderr and "1/1 100.0%" in stderr
    no_creds = subprocess.run(
        ["aia-engine", "batch", "submit", str(path)],
        env={**env, "AIA_CLIENT_SECRET": ""}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert no_creds.returncode == 2 and "AIA_CLIENT_SECRET" in no_creds.stderr
    wrong = subprocess.run(
        ["aia-engine", "batch", "submit", str(path), "--chunk-size", "500"],
        env={**env, "AIA_CLIENT_SECRET": "not-the-secret"}, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode == 2, wrong.stderr
    assert "refused: 401" in wrong.stderr and "check AIA_CLIENT_ID" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_csv_with_wait_follows_every_task_through_the_quota_and_writes_results(
    services: Services, start_worker: WorkerFactory, make_client: Callable[..., Credentials]
) -> None:
    # An API whose tiers allow 5 active tasks: the CLI must wait on 429 E013 and carry on
    api = ApiServer(services, "quota-api", AIA_RATE_LIMIT_TIERS=tiers(5))
    worker = start_worker("batchwait", concurrency=2)
    creds = make_client(name="csv script", tier="developer")
    rows = ["task_type,description,priority,workflow,requirements.region"]
    for n in range(1, 41):
        rows.append(
            f'batch,row {n},low,"{{""s"": {{""agent"": ""noop"", ""params"": {{""echo"": {n}}}}}}}",eu'
        )
    rows[10] = 'batch,bad json,low,"{not json}",eu'  # file line 11
    rows[20] = 'batch,unknown agent,low,"{""s"": {""agent"": ""ghost""}}",eu'  # file line 21
    path = services.tmp / "tasks.csv"
    path.write_text("\n".join(rows) + "\n")
    results = services.tmp / "tasks-results.jsonl"
    command = ["aia-engine", "batch", "submit", str(path), "--wait", "--results", str(results),
               "--timeout", "240", "--json"]  # fmt: skip
    try:
        done = subprocess.run(command, env=batch_env(api, creds), cwd=ROOT, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        first_results = results.read_text()
        # Run again: nothing new is sent, and the finished tasks are reported all the same
        again = subprocess.run(command, env=batch_env(api, creds), cwd=ROOT, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
    finally:
        _stop(worker)
        api.stop()
    summary = json.loads(done.stdout)
    assert done.returncode == 1, done.stderr  # two lines were rejected
    assert summary["total"] == 40 and summary["accepted"] == 38, summary
    assert summary["finished"] == {"completed": 38}, summary
    assert [r["line"] for r in summary["rejected"]] == [11, 21]
    assert "not valid JSON" in summary["rejected"][0]["reason"]
    assert "ghost" in summary["rejected"][1]["reason"]
    rerun = json.loads(again.stdout)
    assert (rerun["accepted"], rerun["already_submitted"]) == (0, 38), rerun
    assert rerun["finished"] == {"completed": 38}
    assert sorted(results.read_text().splitlines()) == sorted(first_results.splitlines())
    written = [json.loads(x) for x in first_results.splitlines()]
    assert len(written) == 38 and {r["status"] for r in written} == {"completed"}
    for row in written:
        n = row["line"] - 1  # the header is line 1; row n is on line n + 1
        assert row["results"]["s"]["echo"] == n
