"""`aia-engine datasets upload FILE --name NAME`: a client's own dataset, sent through the API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import add_api_options, api_client, api_refusal


def add_parser(dsub: Any) -> None:
    upload = dsub.add_parser(
        "upload",
        help="upload FILE as your own dataset NAME through the HTTP API (with a progress bar)",
        description="Send FILE to POST /datasets as the calling client's own dataset, streamed "
        "(CSV with a header row, JSON Lines, or JSON: an array of objects). Credentials come "
        "from AIA_CLIENT_ID and AIA_CLIENT_SECRET (the client needs the write scope), the API "
        "from AIA_API_URL or --api-url. Exit codes: 0 stored; 2 refused (the message says "
        "why: bad file, limit, name taken without --replace, credentials) or unreachable; "
        "130 interrupted (nothing is stored of a cut upload).",
    )
    upload.add_argument("file", type=Path)
    upload.add_argument("--name", required=True, help="1-100 letters, digits, '_', '.' or '-'")
    upload.add_argument("--replace", action="store_true", help="replace your dataset NAME")
    upload.add_argument(
        "--format", choices=["csv", "jsonl", "json"], help="default: by the file's extension"
    )
    add_api_options(upload)
    bar = upload.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="draw the progress bar even when stderr is not a terminal",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    upload.add_argument("--json", action="store_true", help="print the stored dataset as JSON")
    upload.set_defaults(func=cmd_datasets_upload)


def cmd_datasets_upload(args: argparse.Namespace) -> int:
    from aia_client import AIAAPIError

    from aia_engine.client.progress import ByteProgress

    if not args.file.is_file():
        raise RuntimeError(f"{args.file}: no such file")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ByteProgress(sys.stderr) if show else None
    with api_client(args, timeout=120.0) as api:
        try:
            added = api.datasets.upload(
                args.file, args.name, format=args.format, replace=args.replace, progress=bar
            ).model_dump(mode="json")
        except ValueError as exc:  # the format cannot be told from the file's name
            raise RuntimeError(f"{exc} (with --format)") from exc
        except AIAAPIError as exc:
            hints = {409: "add --replace to replace it"}
            raise RuntimeError(api_refusal(exc, api.base_url, "the upload", hints)) from exc
        finally:
            if bar:
                bar.close()
    if args.json:
        print(json.dumps(added, indent=2))
    else:
        print(describe_added(added, "your own"))
    return 0


def describe_added(added: dict[str, Any], owner: str) -> str:
    columns = ", ".join(f"{c['name']} ({c['type']})" for c in added["columns"][:20])
    return (
        f"dataset {added['name']} ({owner}, {added['id']}): {added['rows']} rows, "
        f"{added['size_bytes']} bytes, columns {columns}\n"
        f'name it in a task with {{"requirements": {{"data_source": "{added["name"]}"}}}}'
    )
