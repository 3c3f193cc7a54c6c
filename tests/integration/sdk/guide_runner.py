"""Runs the API guide's Python examples (examples/sdk/) as written, against a live API.

The only change made to an example's code is putting real credentials in place of the guide's
two placeholder literals, "your_client_id" and "your_client_secret" (each must occur). The
examples read nothing else: the base URL comes from AIA_BASE_URL in the child's environment.

- `run_complete_example(...)`: the "Complete SDK Example" as a script (`python file.py`, its
  own `__main__` block), in a subprocess; its output and exit code.
- `run_streaming_example(...)`: the "Streaming API Example", whose `__main__` block is not
  runnable as printed (`asyncio.run(asyncio.gather(...))`) and which calls two functions the
  guide leaves to the reader. A subprocess (tests/integration/sdk/guide_stream_harness.py)
  execs the code under another `__name__`, defines `notify_task_completion` and
  `process_kg_update` to record what they get, runs the named stream functions as asyncio
  tasks, says when their streams are open; the test's `trigger()` then makes the work and says
  what to wait for; the harness waits for it, cancels the streams (the guide's `finally:`
  closes the clients) and reports what the guide's code printed and what the two functions got.

Only the standard library is imported here, so unit tests can use the text functions.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "sdk"
COMPLETE = EXAMPLES / "complete_sdk_example.py"
STREAMING = EXAMPLES / "streaming_example.py"
# The examples' source: the guide, outside the repository (AIA_API_GUIDE names another copy).
GUIDE = Path(
    os.environ.get("AIA_API_GUIDE") or ROOT.parent / "shared" / "reference" / "aia-api-guide.md"
)
BLOCKS = {COMPLETE.name: "#### Complete SDK Example", STREAMING.name: "### Streaming API Example"}
PLACEHOLDERS = ('"your_client_id"', '"your_client_secret"')
CONTROL = "@@harness "  # the harness's own lines on stdout; everything else is the example's


def guide_block(markdown: str, heading: str) -> str:
    """The code of the first ```python block after the line `heading`, exactly as written
    (every line, each ending in a newline)."""
    lines = markdown.split("\n")
    start = lines.index(heading)
    opening = next(i for i in range(start + 1, len(lines)) if lines[i] == "```python")
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i] == "```")
    return "".join(line + "\n" for line in lines[opening + 1 : closing])


def with_credentials(source: str, client_id: str, client_secret: str) -> str:
    """`source` with the guide's placeholder literals replaced by Python literals of the real
    credentials; nothing else changes. Fails when a placeholder does not occur."""
    for placeholder in PLACEHOLDERS:
        assert placeholder in source, f"the example has no {placeholder} to replace"
    return source.replace(PLACEHOLDERS[0], json.dumps(client_id)).replace(
        PLACEHOLDERS[1], json.dumps(client_secret)
    )


def child_env(base_url: str, **extra: str) -> dict[str, str]:
    """The environment an example runs in: this one, AIA_BASE_URL, and `aia_client` and the
    repository importable (the SDK from this tree, whatever is installed)."""
    path = [str(ROOT / "clients" / "python"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "AIA_BASE_URL": base_url,
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def run_complete_example(
    base_url: str, client_id: str, client_secret: str, workdir: Path, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python complete_sdk_example.py` (credentials put in) with AIA_BASE_URL set."""
    script = workdir / COMPLETE.name
    script.write_text(with_credentials(COMPLETE.read_text(), client_id, client_secret))
    return subprocess.run(
        [sys.executable, str(script)],
        env=child_env(base_url),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Expect:
    """What the streaming run waits for after the trigger: tasks whose completed update reached
    `notify_task_completion`, and entities whose change reached `process_kg_update`."""

    task_ids: list[str] = field(default_factory=list)
    entity_ids: list[str] = field(default_factory=list)


@dataclass
class StreamRun:
    output: list[str]  # what the guide's code printed, line by line
    notified: list[dict[str, Any]]  # notify_task_completion(task_update), as attributes
    kg_updates: list[dict[str, Any]]  # process_kg_update(update), as attributes
    ended_early: dict[str, str]  # a stream function that returned before it was cancelled
    stderr: str


def run_streaming_example(
    base_url: str,
    client_id: str,
    client_secret: str,
    trigger: Callable[[], Expect],
    *,
    functions: tuple[str, ...] = ("stream_task_updates",),
    timeout: float = 60,
) -> StreamRun:
    """Run the streaming example's `functions` until what `trigger()` expects has arrived."""
    env = child_env(base_url, AIA_GUIDE_CLIENT_ID=client_id, AIA_GUIDE_CLIENT_SECRET=client_secret)
    argv = [sys.executable, "-m", "tests.integration.sdk.guide_stream_harness", str(STREAMING)]
    proc = subprocess.Popen(
        [*argv, *functions, "--timeout", str(timeout)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, lines.put, None), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, errors.append, ""), daemon=True),
    ]
    for reader in readers:
        reader.start()
    output: list[str] = []
    deadline = time.monotonic() + timeout + 15

    def control(expected: str) -> str:
        """The next control line starting with `expected`; the example's lines are kept."""
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                proc.kill()
                proc.wait(10)
                raise AssertionError(
                    f"the streaming harness gave no {expected!r} (exit {proc.poll()}):\n"
                    + "\n".join(output[-40:])
                    + "\n--- stderr ---\n"
                    + "\n".join(errors)[-4000:]
                )
            if line.startswith(CONTROL):
                message = line.removeprefix(CONTROL)
                if message.startswith(expected):
                    return message.removeprefix(expected).strip()
            else:
                output.append(line)

    try:
        control("ready")
        expect = trigger()
        proc.stdin.write(CONTROL + "expect " + json.dumps(expect.__dict__) + "\n")
        proc.stdin.flush()
        result = json.loads(control("done"))
        proc.wait(15)
        while (rest := lines.get(timeout=5)) is not None:  # the pump's end marker
            output.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for reader in readers:
            reader.join(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    return StreamRun(
        output, result["notified"], result["kg_updates"], result["ended_early"], "\n".join(errors)
    )


def _pump(stream: Any, put: Callable[[Any], None], end: str | None) -> None:
    for line in stream:
        put(line.rstrip("\n"))
    put(end)
