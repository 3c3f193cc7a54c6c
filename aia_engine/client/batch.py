"""Batch files: one task per line (JSON Lines or CSV), sent through `POST /tasks/batch-submit`.

The requests go through the SDK (`aia_client.AIASyncClient`): its transport owns tokens,
retries and waits; this module owns the file: lines, keys, chunks in flight, the summary.

Every line carries an idempotency key made of the batch id (by default a digest of the file's
absolute path), its line number and a digest of its content. Running the same file again,
after an interruption or a failure, gets the tasks already accepted back instead of new ones,
whatever the chunk size; a line that was corrected is sent as new work.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from aia_client import AIAAPIError, AIASyncClient

FORMATS = ("jsonl", "csv")
JSON_COLUMNS = {"requirements", "context", "workflow", "agents_required"}
TERMINAL = ("completed", "failed", "cancelled")
Outcome = tuple[int, str, str]
"""(line, kind, value): kind created/already (value: task id), rejected/failed (a reason)."""


@dataclass(frozen=True)
class Line:
    number: int
    body: dict[str, Any] | None
    error: str | None = None
    key: str = ""


@dataclass
class BatchSummary:
    total: int = 0
    accepted: int = 0
    """New tasks accepted by this run."""
    already: int = 0
    """Lines an earlier run of the same file had sent (their tasks were not created again)."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason): lines the file or the API refused; fix them and run again."""
    failed: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason): lines that could not be sent (network, server); run again to retry."""
    tasks: dict[int, str] = field(default_factory=dict)
    """line -> task id."""
    finished: dict[str, int] = field(default_factory=dict)
    """With `wait`: tasks by final status (completed, failed, cancelled)."""
    unfinished: int = 0
    """With `wait`: tasks still running when the wait timed out."""
    interrupted: bool = False
    elapsed_s: float = 0.0
    earlier: list[str] = field(default_factory=list, repr=False)
    """Task ids an earlier run created."""

    def record(self, outcomes: list[Outcome]) -> None:
        for number, kind, value in outcomes:
            if kind == "rejected":
                self.rejected.append((number, value))
            elif kind == "failed":
                self.failed.append((number, value))
            else:
                self.tasks[number] = value
                if kind == "created":
                    self.accepted += 1
                else:
                    self.already += 1
                    self.earlier.append(value)

    @property
    def done(self) -> int:
        return self.accepted + self.already + len(self.rejected) + len(self.failed)

    @property
    def ok(self) -> bool:
        bad = self.rejected or self.failed or self.interrupted or self.unfinished
        return not bad and not self.finished.get("failed") and not self.finished.get("cancelled")

    def render(self, *, limit: int = 50) -> str:
        rate = self.done / self.elapsed_s if self.elapsed_s else 0.0
        out = [
            f"{self.total} lines in {self.elapsed_s:.1f}s ({rate:,.0f} lines/s): "
            f"{self.accepted} accepted, {self.already} already submitted, "
            f"{len(self.rejected)} rejected, {len(self.failed)} failed to send"
        ]
        if self.finished or self.unfinished:
            states = ", ".join(f"{n} {s}" for s, n in sorted(self.finished.items()))
            out.append(f"tasks: {states or 'none finished'}; {self.unfinished} unfinished")
        for title, rows in (("rejected", self.rejected), ("failed to send", self.failed)):
            for number, reason in sorted(rows)[:limit]:
                out.append(f"  line {number} {title}: {reason}")
            if len(rows) > limit:
                out.append(f"  ... and {len(rows) - limit} more {title}")
        if self.interrupted or self.failed:
            out.append("run the same command again to resume: accepted lines are not sent twice")
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accepted": self.accepted,
            "already_submitted": self.already,
            "rejected": [{"line": n, "reason": r} for n, r in sorted(self.rejected)],
            "failed": [{"line": n, "reason": r} for n, r in sorted(self.failed)],
            "finished": self.finished,
            "unfinished": self.unfinished,
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def default_batch_id(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]


def _key(batch_id: str, number: int, content: str) -> str:
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"batch:{batch_id}:{number}:{digest}"


def count_lines(path: Path, fmt: str | None = None) -> int:
    """Lines that hold a task (blank lines and rows do not count), without parsing them."""
    with path.open(encoding="utf-8", newline="") as handle:
        if detect_format(path, fmt) == "csv":
            return max(0, sum(1 for row in csv.reader(handle) if any(row)) - 1)  # the header
        return sum(1 for text in handle if text.strip())


def read_lines(
    path: Path | str, *, fmt: str | None = None, batch_id: str | None = None
) -> Iterator[Line]:
    """Each task line of the file: its body, or why it cannot be sent, and its key."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    batch_id = batch_id or default_batch_id(path)
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            yield from _csv_lines(handle, batch_id)
        else:
            yield from _json_lines(handle, batch_id)


def _json_lines(handle: IO[str], batch_id: str) -> Iterator[Line]:
    for number, text in enumerate(handle, start=1):
        text = text.strip()
        if not text:
            continue
        key = _key(batch_id, number, text)
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Line(number, None, f"not valid JSON: {exc.msg} at column {exc.colno}", key)
            continue
        if not isinstance(body, dict):
            yield Line(number, None, f"a task is a JSON object, not {type(body).__name__}", key)
            continue
        yield Line(number, body, None, key)


def _csv_lines(handle: IO[str], batch_id: str) -> Iterator[Line]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames or "task_type" not in reader.fieldnames:
        raise ValueError("a CSV batch file needs a header row with at least a task_type column")
    start = reader.line_num + 1
    for row in reader:
        number, start = start, reader.line_num + 1
        # Extra fields sit under the key None, which sort_keys cannot order with the names.
        content = json.dumps({str(k): v for k, v in row.items()}, sort_keys=True)
        key = _key(batch_id, number, content)
        if None in row:
            yield Line(number, None, "more fields than the header has columns", key)
            continue
        try:
            body = _csv_body(row)
        except ValueError as exc:
            yield Line(number, None, str(exc), key)
            continue
        if body:
            yield Line(number, body, None, key)


def _csv_body(row: dict[str, str]) -> dict[str, Any]:
    """Columns are task fields; `requirements`/`context`/`workflow`/`agents_required` hold
    JSON; `requirements.X` and `context.X` set one string value inside those objects."""
    body: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or value == "":
            continue
        if column in JSON_COLUMNS:
            try:
                body[column] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"column {column} is not valid JSON: {exc.msg}") from exc
        elif "." in column and column.split(".", 1)[0] in ("requirements", "context"):
            outer, inner = column.split(".", 1)
            body.setdefault(outer, {})[inner] = value
        else:
            body[column] = value
    return body


Progress = Callable[[BatchSummary, str], None]


def submit_file(
    api: AIASyncClient,
    path: Path | str,
    *,
    fmt: str | None = None,
    batch_id: str | None = None,
    chunk_size: int = 100,
    in_flight: int = 4,
    progress: Progress | None = None,
    wait_for_tasks: bool = False,
    results: Path | str | None = None,
    wait_timeout_s: float | None = None,
    poll_interval_s: float = 1.0,
) -> BatchSummary:
    """Send every line of `path`; with `wait_for_tasks`, follow the tasks until they end and
    write one JSON line per task (line, task_id, status, results or error) to `results`.

    Ctrl-C stops it cleanly: the summary says `interrupted`, and the same call resumes. The
    client's 429 waits should be unbounded for a file larger than the quota
    (`max_rate_limit_retries=None`); Ctrl-C `cancel()`s them.
    """
    path = Path(path)
    began = time.monotonic()
    wall_start = datetime.now(UTC)
    summary = BatchSummary(total=count_lines(path, fmt))
    report = progress or (lambda _s, _phase: None)
    try:
        _send_all(api, read_lines(path, fmt=fmt, batch_id=batch_id), summary, chunk_size,
                  in_flight, lambda: report(summary, "submit"))  # fmt: skip
        report(summary, "submit")
        if wait_for_tasks and not summary.interrupted:
            _follow(api, summary, results, wall_start, wait_timeout_s, poll_interval_s, report)
    except KeyboardInterrupt:
        api.cancel()
        summary.interrupted = True
    summary.elapsed_s = time.monotonic() - began
    return summary


def _send_all(
    api: AIASyncClient,
    lines: Iterator[Line],
    summary: BatchSummary,
    chunk_size: int,
    in_flight: int,
    report: Callable[[], None],
) -> None:
    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="aia-batch")
    pending: set[Future[list[Outcome]]] = set()

    def settle(done: set[Future[list[Outcome]]]) -> None:
        for future in done:  # only this (the main) thread changes the summary
            summary.record(future.result())
        report()

    try:
        chunk: list[Line] = []
        for line in lines:
            if line.body is None:
                summary.rejected.append((line.number, line.error or "unreadable"))
                continue
            chunk.append(line)
            if len(chunk) == chunk_size:
                if len(pending) >= in_flight:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    settle(done)
                pending.add(pool.submit(_send_chunk, api, chunk))
                chunk = []
        if chunk:
            pending.add(pool.submit(_send_chunk, api, chunk))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            settle(done)
    except KeyboardInterrupt:
        api.cancel()  # requests waiting to retry give up, so the pool stops at once
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _send_chunk(api: AIASyncClient, chunk: list[Line]) -> list[Outcome]:
    """One chunk's lines, each with its outcome; the SDK halves a chunk the API finds too big
    (body size, items per request, active-task quota), so a chunk that cannot go fails only
    its own lines."""
    items = [{**line.body, "idempotency_key": line.key} for line in chunk if line.body]
    try:
        answer = api.tasks.submit_batch(items)
    except AIAAPIError as exc:
        if exc.status in (401, 403):  # credentials or scope: no line can go; stop the run
            raise
        kind = "failed" if exc.status == 0 or exc.status >= 500 else "rejected"
        return [(line.number, kind, str(exc)) for line in chunk]
    outcomes: list[Outcome] = []
    for line, result in zip(chunk, answer, strict=True):
        if result.status == "rejected" or result.task_id is None:
            outcomes.append((line.number, "rejected", _reason(result.error or {})))
        else:
            kind = "already" if result.created is False else "created"
            outcomes.append((line.number, kind, result.task_id))
    return outcomes


def _reason(error: dict[str, Any]) -> str:
    details = error.get("details") or {}
    where = details.get("field")
    text = f"{error.get('code', '')} {error.get('message', '')}".strip()
    return f"{text} (field {where})" if where and str(where) not in text else text


def _follow(
    api: AIASyncClient,
    summary: BatchSummary,
    results: Path | str | None,
    since: datetime,
    timeout_s: float | None,
    poll_interval_s: float,
    report: Progress,
) -> None:
    """Poll the tasks that changed since the last look; fetch each finished one once."""
    lines_of = {task_id: number for number, task_id in summary.tasks.items()}
    pending = set(lines_of)
    # The listing only covers tasks this run created (the API finds them by creation time);
    # tasks an earlier run created are looked at one by one until they end.
    earlier = {t for t in summary.earlier if t in pending}
    created_after = since - timedelta(minutes=1)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    since -= timedelta(seconds=5)
    with (
        _results_file(results) as out,
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="aia-wait") as pool,
    ):
        while pending:
            looked = datetime.now(UTC)
            changed = _changed(api, since, created_after)
            ended = [t for t in changed if t in pending] + sorted(earlier & pending)
            for view in pool.map(api.tasks.get, set(ended)):
                status = view.status
                if status not in TERMINAL:
                    continue
                pending.discard(view.task_id)
                summary.finished[status] = summary.finished.get(status, 0) + 1
                if out is not None:
                    row = {"line": lines_of[view.task_id], "task_id": view.task_id,
                           "status": status, "results": view.results,
                           "error": view.error}  # fmt: skip
                    out.write(json.dumps(row) + "\n")
            if out is not None:
                out.flush()
            summary.unfinished = len(pending)
            report(summary, "wait")
            if not pending or (deadline is not None and time.monotonic() > deadline):
                break
            # Rows commit a little after their updated_at: look back a margin each time.
            since = looked - timedelta(seconds=5)
            time.sleep(poll_interval_s)


@contextlib.contextmanager
def _results_file(path: Path | str | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    with Path(path).open("w", encoding="utf-8") as handle:
        yield handle


def _changed(api: AIASyncClient, since: datetime, created_after: datetime) -> list[str]:
    """Ids of this client's tasks created after `created_after`, in a final status, that
    changed at or after `since`."""
    listed = api.tasks.list(updated_after=since, created_after=created_after, page_size=200)
    return [task.task_id for task in listed if task.status in TERMINAL]
