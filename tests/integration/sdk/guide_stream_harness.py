"""Runs functions of the guide's streaming example (see guide_runner.run_streaming_example).

    python -m tests.integration.sdk.guide_stream_harness FILE FUNCTION... [--timeout S]

Credentials come from AIA_GUIDE_CLIENT_ID / AIA_GUIDE_CLIENT_SECRET and replace the example's
placeholder literals (the only change to its code); the example reads AIA_BASE_URL itself.
Protocol on stdout/stdin, lines starting with "@@harness " (anything else on stdout is what
the example printed):
    -> ready                    every function's event stream has answered 200
    <- expect {"task_ids": [...], "entity_ids": [...]}
    -> done {"notified": [...], "kg_updates": [...], "ended_early": {...}}
A stream's position is fixed before its answer's head is sent (api/routes/streams.py), so once
"ready" is out, whatever the test does next reaches the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.sdk.guide_runner import CONTROL, with_credentials

STREAM_PATHS = {
    "stream_task_updates": "/tasks/stream",
    "stream_knowledge_graph_updates": "/knowledge-graph/stream",
}
TASK_FIELDS = ("task_id", "status", "progress", "results")
KG_FIELDS = ("change_type", "entity_id", "entity_type", "timestamp", "relationship")


def say(message: str) -> None:
    print(CONTROL + message, flush=True)


def attributes(item: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes the guide's code reads, JSON-ready (anything else as its str())."""
    plain: dict[str, Any] = json.loads(
        json.dumps({n: getattr(item, n, None) for n in names}, default=str)
    )
    return plain


def load(path: Path, client_id: str, client_secret: str) -> dict[str, Any]:
    """The example's globals after running its code under a name that is not "__main__" (its
    `__main__` block does not run), with the two functions it leaves to the reader defined."""
    source = with_credentials(path.read_text(), client_id, client_secret)
    namespace: dict[str, Any] = {"__name__": "guide_streaming_example", "__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


def watch_streams() -> dict[str, asyncio.Event]:
    """An event per stream path, set when a GET of it answers 200 (whatever client sent it)."""
    opened = {path: asyncio.Event() for path in STREAM_PATHS.values()}
    send = httpx.AsyncClient.send

    async def watched(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        response = await send(self, request, **kwargs)
        if response.status_code == 200 and request.url.path in opened:
            opened[request.url.path].set()
        return response

    httpx.AsyncClient.send = watched  # type: ignore[method-assign]
    return opened


async def main(path: Path, functions: list[str], timeout: float) -> int:
    notified: list[dict[str, Any]] = []
    kg_updates: list[dict[str, Any]] = []
    changed = asyncio.Event()

    async def notify_task_completion(task_update: Any) -> None:
        notified.append(attributes(task_update, TASK_FIELDS))
        changed.set()

    async def process_kg_update(update: Any) -> None:
        kg_updates.append(attributes(update, KG_FIELDS))
        changed.set()

    example = load(path, os.environ["AIA_GUIDE_CLIENT_ID"], os.environ["AIA_GUIDE_CLIENT_SECRET"])
    example["notify_task_completion"] = notify_task_completion
    example["process_kg_update"] = process_kg_update
    opened = watch_streams()
    tasks = {name: asyncio.create_task(example[name](), name=name) for name in functions}
    ended_early: dict[str, str] = {}

    def early() -> bool:
        for name, task in tasks.items():
            if task.done() and name not in ended_early:
                error = "cancelled" if task.cancelled() else repr(task.exception())
                ended_early[name] = "returned" if error == "None" else error
        return bool(ended_early)

    async def until(condition: Any) -> None:
        while not condition() and not early():
            changed.clear()  # woken by an arrival; otherwise looks again every 0.2 s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.2)

    try:
        async with asyncio.timeout(timeout):
            wanted = [opened[STREAM_PATHS[name]] for name in functions]
            await until(lambda: all(e.is_set() for e in wanted))
            say("ready")
            line = await asyncio.to_thread(sys.stdin.readline)
            expect = json.loads(line.removeprefix(CONTROL).removeprefix("expect "))
            task_ids, entity_ids = set(expect["task_ids"]), set(expect["entity_ids"])

            def arrived() -> bool:
                done = {n["task_id"] for n in notified if n["status"] == "completed"}
                seen = {u["entity_id"] for u in kg_updates}
                return task_ids <= done and entity_ids <= seen

            await until(arrived)
    except TimeoutError:
        ended_early.setdefault("harness", f"timed out after {timeout} s")
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)  # the guide's finally: runs
    result = {"notified": notified, "kg_updates": kg_updates, "ended_early": ended_early}
    say("done " + json.dumps(result))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("functions", nargs="+", choices=sorted(STREAM_PATHS))
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.file, args.functions, args.timeout)))
