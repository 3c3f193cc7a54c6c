"""`aia-engine datasets upload FILE --name NAME`: a client's own dataset, sent through the API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aia_engine.settings import get_settings


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
    upload.add_argument("--api-url", help="default AIA_API_URL (http://127.0.0.1:8000)")
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
    from aia_engine.client import ApiClient, ApiError
    from aia_engine.client.progress import ByteProgress
    from aia_engine.client.uploads import upload_file

    if not args.file.is_file():
        raise RuntimeError(f"{args.file}: no such file")
    settings = get_settings()
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ByteProgress(sys.stderr) if show else None
    try:
        api = ApiClient(
            args.api_url or settings.api_url,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            timeout=120.0,
        )
    except ValueError as exc:
        raise RuntimeError(str(exc)) from exc
    with api:
        try:
            added = upload_file(
                api,
                args.file,
                name=args.name,
                fmt=args.format,
                replace=args.replace,
                progress=bar,
            )
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc
        except ApiError as exc:
            if exc.status == 0:  # no answer: the network, not the API
                raise RuntimeError(
                    f"could not reach the API at {api.url}: {exc.error.get('message', exc)}; "
                    "check AIA_API_URL (or --api-url) and that the API is running"
                ) from exc
            hint = {
                401: "; check AIA_CLIENT_ID and AIA_CLIENT_SECRET",
                403: "; the client needs the write scope",
                409: "; add --replace to replace it",
            }.get(exc.status, "")
            raise RuntimeError(f"the API refused the upload: {exc}{hint}") from exc
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
