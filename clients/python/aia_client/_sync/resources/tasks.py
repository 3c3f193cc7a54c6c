"""`client.tasks`: submit, read, list, cancel, retry, orchestrate, batches and waiting."""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

from aia_client import models
from aia_client._io import sync_map, sync_sleep
from aia_client._stream import IDLE_TIMEOUT, RECONNECT_ATTEMPTS
from aia_client._sync._sse import events
from aia_client._sync.resources._base import SyncResource, drop_none
from aia_client.errors import AIAAPIError, AIAConnectionError, AIAServerError, AIATimeoutError
from aia_client.updates import TERMINAL_EVENTS, TaskUpdate

TERMINAL = frozenset({"completed", "failed", "cancelled"})
MAX_BATCH = 100
"""Items per `POST /tasks/batch-submit` (the API's limit)."""


class SyncTasks(SyncResource):
    def submit(
        self,
        task_type: str,
        description: str = "",
        priority: str | None = None,
        requirements: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | builtins.list[Any] | None = None,
        agents_required: builtins.list[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> models.TaskAccepted:
        """Submit one task. It carries an `Idempotency-Key` (yours, or one made per call), so
        the retries after a dropped connection can never create a second task."""
        body = drop_none(
            task_type=task_type,
            description=description,
            priority=priority,
            requirements=requirements,
            context=context,
            workflow=workflow,
            agents_required=agents_required,
        )
        return self._call(
            models.TaskAccepted,
            "POST",
            "/tasks/submit",
            json=body,
            create=True,
            headers=_key_header(idempotency_key),
        )

    def orchestrate(
        self,
        task_type: str,
        description: str = "",
        priority: str | None = None,
        requirements: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        workflow: Mapping[str, Any] | builtins.list[Any] | None = None,
        agents_required: builtins.list[str] | None = None,
        *,
        dry_run: bool = False,
        idempotency_key: str | None = None,
    ) -> models.TaskAccepted | models.DryRunPlan:
        """Submit a staged workflow (`workflow` required). `dry_run=True` validates and plans
        it without running anything and returns the plan."""
        body = drop_none(
            task_type=task_type,
            description=description,
            priority=priority,
            requirements=requirements,
            context=context,
            workflow=workflow,
            agents_required=agents_required,
        )
        response = self._transport.request(
            "POST",
            "/tasks/orchestrate",
            json=body,
            params={"dry_run": "true"} if dry_run else None,
            create=not dry_run,
            idempotent=True if dry_run else None,
            headers=_key_header(idempotency_key),
        )
        if dry_run:
            return models.DryRunPlan.model_validate_json(response.content)
        return models.TaskAccepted.model_validate_json(response.content)

    def get(self, task_id: str) -> models.TaskView:
        return self._call(models.TaskView, "GET", f"/tasks/{_segment(task_id)}")

    def list(
        self,
        *,
        status: str | None = None,
        task_type: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        updated_after: datetime | str | None = None,
        page_size: int = 100,
    ) -> Iterator[models.TaskSummary]:
        """Every matching task, newest first, fetching pages as the iteration goes."""
        params = drop_none(
            status=status,
            task_type=task_type,
            created_after=_time(created_after),
            created_before=_time(created_before),
            updated_after=_time(updated_after),
            limit=page_size,
        )
        for task in self._pages(models.TaskList, "tasks", "/tasks", params):
            yield task

    def cancel(self, task_id: str) -> models.CancelResult:
        return self._call(
            models.CancelResult, "POST", f"/tasks/{_segment(task_id)}/cancel", idempotent=True
        )

    def retry(self, task_id: str, *, idempotency_key: str | None = None) -> models.RetryResult:
        return self._call(
            models.RetryResult,
            "POST",
            f"/tasks/{_segment(task_id)}/retry",
            create=True,
            headers=_key_header(idempotency_key),
        )

    def submit_many(
        self,
        tasks: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int = MAX_BATCH,
        concurrency: int = 4,
        batch_id: str | None = None,
    ) -> builtins.list[models.BatchItem]:
        """Submit many tasks through `POST /tasks/batch-submit`, `chunk_size` per request and
        `concurrency` requests at once; one result per task, in the order given (`index` is
        the task's position in `tasks`).

        Each task without its own `idempotency_key` gets `<batch_id>-<position>` (batch_id: a
        new one per call unless given), so chunks retried after a dropped connection return
        the tasks already created. Pass the same `batch_id` to resume an interrupted run of the
        same list. A task the API refuses has `status == "rejected"` and its `error`; a chunk
        that cannot be sent at all (network, server, after the retries) raises."""
        if not 1 <= chunk_size <= MAX_BATCH:
            raise ValueError(f"chunk_size must be 1-{MAX_BATCH}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        prefix = batch_id or f"aia-sdk-{uuid.uuid4().hex}"
        items = [
            {**task, "idempotency_key": task.get("idempotency_key") or f"{prefix}-{position}"}
            for position, task in enumerate(tasks)
        ]
        chunks = [
            (start, items[start : start + chunk_size]) for start in range(0, len(items), chunk_size)
        ]
        answers = sync_map(self._send_chunk, chunks, concurrency)
        return [item for answer in answers for item in answer]

    def submit_batch(
        self, tasks: Sequence[Mapping[str, Any]], *, start: int = 0
    ) -> builtins.list[models.BatchItem]:
        """One chunk of `submit_many`, for callers that make their own chunks and want each
        chunk's outcome (a batch file sender: a chunk that cannot be sent fails only its own
        lines). One `POST /tasks/batch-submit`, halved and sent again while the API finds it
        too big (body size, items per request, active-task quota); one result per task, in
        order, `index` counted from `start`. Give each task its own `idempotency_key` to make
        a rerun find what an earlier one created (a task without one gets a new key)."""
        prefix = f"aia-sdk-{uuid.uuid4().hex}"
        items = [
            {**task, "idempotency_key": task.get("idempotency_key") or f"{prefix}-{position}"}
            for position, task in enumerate(tasks, start=start)
        ]
        return self._send_chunk((start, items))

    def _send_chunk(
        self, chunk: tuple[int, builtins.list[dict[str, Any]]]
    ) -> builtins.list[models.BatchItem]:
        start, items = chunk
        try:
            result = self._call(
                models.BatchResult,
                "POST",
                "/tasks/batch-submit",
                json={"tasks": items},
                idempotent=True,  # every item carries its key
            )
        except AIAAPIError as exc:
            too_many = exc.details.get("issue") == "too many items"
            too_big = exc.status == 413 or exc.code == "E013" or too_many
            if too_big and len(items) > 1:  # body size, active-task quota: halve the chunk
                half = len(items) // 2
                return self._send_chunk((start, items[:half])) + self._send_chunk(
                    (start + half, items[half:])
                )
            raise
        for item in result.results:  # the server numbers a chunk's items from 0
            item.index += start
        return result.results

    @overload
    def wait(  # type: ignore[overload-overlap]  # a str is one id, not an iterable of ids
        self, task_ids: str, timeout: float | None = None, *, poll_interval: float = 1.0
    ) -> models.TaskView: ...

    @overload
    def wait(
        self, task_ids: Iterable[str], timeout: float | None = None, *, poll_interval: float = 1.0
    ) -> dict[str, models.TaskView]: ...

    def wait(
        self,
        task_ids: str | Iterable[str],
        timeout: float | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> models.TaskView | dict[str, models.TaskView]:
        """Until the task (or every task of a list) is completed, failed or cancelled; its final
        view (or a dict task_id -> view). Raises `AIATimeoutError` after `timeout` seconds,
        carrying the views of the tasks still running in `.details["pending"]`.

        Polls: each pending task is read once per round, rounds `poll_interval` seconds apart
        (the first ones sooner). For one task, `monitor()` follows its event stream instead."""
        pending = [task_ids] if isinstance(task_ids, str) else [*dict.fromkeys(task_ids)]
        deadline = None if timeout is None else time.monotonic() + timeout
        done: dict[str, models.TaskView] = {}
        last: dict[str, models.TaskView] = {}
        pause = min(0.1, poll_interval)
        while pending:
            still = []
            for task_id in pending:
                view = self._view(task_id)
                if view is None:
                    still.append(task_id)
                    continue
                last[task_id] = view
                if view.status in TERMINAL:
                    done[task_id] = view
                else:
                    still.append(task_id)
            pending = still
            if not pending:
                break
            if deadline is not None and time.monotonic() + pause > deadline:
                raise AIATimeoutError(
                    f"{len(pending)} task(s) not finished after {timeout} s",
                    details={"pending": {t: last[t].status for t in pending if t in last}},
                )
            sync_sleep(pause)
            pause = min(poll_interval, pause * 2)
        return done[task_ids] if isinstance(task_ids, str) else done

    def monitor(
        self,
        task_id: str,
        *,
        last_event_id: str | None = None,
        start: str = "start",
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> Iterator[TaskUpdate]:
        """The task's events as they happen, from its first (`start="now"`: from now on, or
        after `last_event_id`), ending after its final one (completed, failed or cancelled):

            async for update in client.tasks.monitor(task.task_id):
                print(update.event_type, update.status, update.progress)

        A dropped connection is reopened where it left off (every event once, in order);
        `reconnect_attempts` failures in a row raise `AIAConnectionError`. `idle_timeout`:
        seconds without a byte (the server sends a heartbeat every 15 s) that count as a drop.
        An unknown task raises `AIANotFoundError`."""
        return events(
            self._transport,
            f"/tasks/{_segment(task_id)}/events",
            TaskUpdate.from_event,
            last_event_id=last_event_id,
            start=start,
            ends=lambda event: event.body.get("event_type") in TERMINAL_EVENTS,
            reconnect_attempts=reconnect_attempts,
            idle_timeout=idle_timeout,
        )

    def _view(self, task_id: str) -> models.TaskView | None:
        """The task's view; None when the server could not answer this round (try again)."""
        try:
            return self.get(task_id)
        except (AIAConnectionError, AIAServerError):
            return None


def _key_header(key: str | None) -> dict[str, str] | None:
    return {"Idempotency-Key": key} if key else None


def _segment(value: str) -> str:
    """A path segment: an id with a `/` or `?` in it would address another route."""
    if not value or any(char in value for char in "/?#%") or value in (".", ".."):
        raise ValueError(f"not an id: {value!r}")
    return value


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
