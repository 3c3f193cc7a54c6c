"""`aia-engine batch submit FILE`: one task per line, sent through the HTTP API."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.common import add_api_options, api_client, api_refusal


def add_parser(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="submit a file of tasks (JSON Lines or CSV) through the API",
        description="Batch jobs from scripts. Credentials come from AIA_CLIENT_ID and "
        "AIA_CLIENT_SECRET, the API from AIA_API_URL.",
    )
    bsub = batch.add_subparsers(dest="batch_command", metavar="ACTION", required=True)
    submit = bsub.add_parser(
        "submit",
        help="send every line of FILE as a task; run it again to resume",
        description="Send every line of FILE as a task (JSON Lines: one task body per line; "
        "CSV: a header row naming task fields, with requirements/context/workflow/"
        "agents_required as JSON and requirements.X/context.X as single values). Each line "
        "has an idempotency key from the file and the line, so running the same command "
        "again after an interruption sends only what was not accepted.",
    )
    submit.add_argument("file", type=Path)
    submit.add_argument("--format", choices=["jsonl", "csv"], help="default: by the extension")
    submit.add_argument(
        "--batch-id",
        help="names this batch in the idempotency keys (default: the file's absolute path); "
        "give the same one to resume a file that moved",
    )
    add_api_options(submit)
    submit.add_argument(
        "--chunk-size", type=int, default=100, help="lines per request (default 100)"
    )
    submit.add_argument("--in-flight", type=int, default=4, help="requests at once (default 4)")
    submit.add_argument(
        "--wait", action="store_true", help="follow the tasks until they end, write results"
    )
    submit.add_argument(
        "--results", type=Path, help="with --wait: where results go (default FILE.results.jsonl)"
    )
    submit.add_argument(
        "--timeout", type=float, default=None, help="with --wait: seconds to wait at most"
    )
    bar = submit.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="draw the progress bar even when stderr is not a terminal",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    submit.add_argument("--json", action="store_true", help="print the summary as JSON")
    submit.set_defaults(func=cmd_batch_submit)


@contextlib.contextmanager
def _refused(url: str) -> Iterator[None]:
    """The API refusing the credentials or the scope stops the run with a clear error."""
    from aia_client import AIAAPIError

    try:
        yield
    except AIAAPIError as exc:
        raise RuntimeError(api_refusal(exc, url)) from exc


def cmd_batch_submit(args: argparse.Namespace) -> int:
    from aia_engine.client import submit_file
    from aia_engine.client.progress import ProgressBar

    if not args.file.is_file():
        raise RuntimeError(f"{args.file}: no such file")
    if args.chunk_size < 1 or args.in_flight < 1:
        raise RuntimeError("--chunk-size and --in-flight must be at least 1")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(sys.stderr) if show else None
    results = args.results or args.file.with_name(args.file.name + ".results.jsonl")
    # A file larger than the quota waits on 429 as long as it takes (Ctrl-C cancels the wait);
    # network errors and 5xx are retried a few more times than the SDK's default.
    api = api_client(
        args,
        max_retries=6,
        max_rate_limit_retries=None,
        max_retry_after=3600.0,
        on_retry=bar.waiting if bar else None,
    )
    with api, _refused(api.base_url):
        summary = submit_file(
            api,
            args.file,
            fmt=args.format,
            batch_id=args.batch_id,
            chunk_size=args.chunk_size,
            in_flight=args.in_flight,
            progress=bar,
            wait_for_tasks=args.wait,
            results=results if args.wait else None,
            wait_timeout_s=args.timeout,
        )
    if bar:
        bar.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.render())
        if args.wait and not summary.interrupted:
            print(f"results: {results}")
    if summary.interrupted:
        return 130
    return 0 if summary.ok else 1
