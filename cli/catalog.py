"""`aia-engine task-types ...` and `aia-engine datasets ...`: what submissions may name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aia_engine.errors import InvalidRequest
from cli import uploads
from cli.common import cli_sessions as _sessions
from cli.common import resolved_settings

TASK_TYPE_FILE = (
    'FILE is JSON with a "workflow" object: stages as in the body of POST /tasks/orchestrate, '
    'e.g. {"description": "...", "workflow": {"analysis": {"agent": "data_analysis_agent", '
    '"dependencies": []}}} (the layout of the built-in templates in workflows/templates/; a '
    "whole orchestrate body works too)."
)


def add_parsers(sub: Any) -> None:
    _task_types(sub)
    _datasets(sub)


def _task_types(sub: Any) -> None:
    tt = sub.add_parser(
        "task-types",
        help="define task types: a name bound to a workflow, for POST /tasks/submit",
        description="A task type is what POST /tasks/submit's task_type names. The built-in "
        "ones come from the templates shipped in workflows/templates/ and cannot be redefined "
        "or deleted; operators add their own here (or with POST /task-types, admin scope). A "
        "submission naming an unknown type is refused with the list of known ones.",
    )
    tsub = tt.add_subparsers(dest="task_types_command", metavar="ACTION", required=True)
    create = tsub.add_parser(
        "create",
        help="define task type NAME from a workflow file",
        description="Define task type NAME. The workflow is validated like a submitted one "
        "(known agents, dependencies, no cycles, limits; datasets its stages name must exist). "
        + TASK_TYPE_FILE,
    )
    create.add_argument("name", help="1-100 letters, digits, '_', '.' or '-'")
    create.add_argument("file", type=Path, help="the workflow, as JSON (see above)")
    create.add_argument("--description", help='default: the file\'s "description"')
    create.set_defaults(func=cmd_task_types_create)
    listing = tsub.add_parser("list", help="list built-in and operator-defined task types")
    listing.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    listing.set_defaults(func=cmd_task_types_list)
    delete = tsub.add_parser(
        "delete",
        help="delete an operator-defined task type (tasks already accepted keep their workflow)",
    )
    delete.add_argument("name")
    delete.set_defaults(func=cmd_task_types_delete)


def _datasets(sub: Any) -> None:
    ds = sub.add_parser(
        "datasets",
        help="add named datasets that tasks name in requirements.data_source / dataset_id",
        description="Datasets are records (JSON objects) stored in PostgreSQL under a name. A "
        'task names one with requirements.data_source (or dataset_id): {"data_source": "NAME"}; '
        "a name that matches no dataset is refused when the task is submitted. Workers read "
        "the records when the stage runs. The shipped samples are named sample:NAME (their "
        "plain names work too unless a dataset of that name exists). Datasets added here are "
        "shared by every client unless --client gives them to one client.",
    )
    dsub = ds.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    add = dsub.add_parser(
        "add",
        help="store the records in FILE as dataset NAME",
        description="Store the records in FILE as dataset NAME. Accepted: JSON (.json: an "
        'array of objects, or {"records": [...]}), JSON Lines (.jsonl or .ndjson: one object '
        "per line) and CSV (.csv: a header row naming the columns; cells that read as numbers "
        "become numbers, except ones with a leading zero such as 007; empty cells become "
        "null). Anything else is refused, as are NaN/Infinity and NUL characters. At most "
        "AIA_DATASET_MAX_BYTES bytes (256 MiB) and AIA_DATASET_MAX_RECORDS records "
        "(10,000,000). The file is streamed into PostgreSQL, never read whole. An existing "
        "name is refused unless --replace. (Clients upload their own with `datasets upload`.)",
    )
    add.add_argument("name", help="1-100 letters, digits, '_', '.' or '-'")
    add.add_argument("file", type=Path, help="a .json, .jsonl / .ndjson or .csv file")
    add.add_argument(
        "--format", choices=["json", "jsonl", "csv"], help="default: by the file's extension"
    )
    add.add_argument(
        "--replace", action="store_true", help="replace the records of an existing dataset"
    )
    add.add_argument("--keep-strings", action="store_true", help="CSV: keep every cell as text")
    add.add_argument(
        "--client", metavar="CLIENT_ID", help="the dataset is this client's own (default: shared)"
    )
    add.set_defaults(func=cmd_datasets_add)
    listing = dsub.add_parser("list", help="list datasets (names, sizes; never their records)")
    listing.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    listing.set_defaults(func=cmd_datasets_list)
    delete = dsub.add_parser(
        "delete", help="delete a dataset (tasks naming it that have not run yet will fail)"
    )
    delete.add_argument("name")
    delete.add_argument("--client", metavar="CLIENT_ID", help="a client's own dataset")
    delete.set_defaults(func=cmd_datasets_delete)
    uploads.add_parser(dsub)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidRequest(
            f"{path}: cannot read the file ({exc.strerror})", field="file", provided_value=str(path)
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"{path}: not valid JSON: {exc}", field="file", provided_value=str(path)
        ) from exc


def cmd_task_types_create(args: argparse.Namespace) -> int:
    from aia_engine.tasktypes import TaskTypeCreate, create_task_type
    from aia_engine.validation import validate_model

    data = _read_json(args.file)
    if not isinstance(data, dict) or "workflow" not in data:
        raise InvalidRequest(
            f"{args.file}: no workflow. {TASK_TYPE_FILE}", field="workflow", provided_value=None
        )
    body = validate_model(
        TaskTypeCreate,
        {
            "name": args.name,
            "description": args.description
            if args.description is not None
            else data.get("description", ""),
            "workflow": data["workflow"],
        },
    )
    made = create_task_type(_sessions(), body, settings=resolved_settings())
    print(
        f"task type {made['name']} created: {len(made['assigned_agents'])} agent(s) "
        f"({', '.join(made['assigned_agents'])}); submit it with "
        f'{{"task_type": "{made["name"]}"}}'
    )
    return 0


def cmd_task_types_list(args: argparse.Namespace) -> int:
    from aia_engine.tasktypes import list_task_types

    types = list_task_types(_sessions())
    if args.json:
        print(json.dumps(types))
        return 0
    for t in types:
        kind = "built-in" if t["builtin"] else "operator"
        print(f"{t['name']:<28} {kind:<9} {', '.join(t['assigned_agents']):<60} {t['description']}")
    return 0


def cmd_task_types_delete(args: argparse.Namespace) -> int:
    from aia_engine.tasktypes import delete_task_type

    delete_task_type(_sessions(), args.name)
    print(f"task type {args.name} deleted")
    return 0


def cmd_datasets_add(args: argparse.Namespace) -> int:
    from aia_engine.datasets.store import check_name
    from aia_engine.datasets.uploads import store_file

    settings = resolved_settings()
    check_name(args.name)  # before reading a large file
    added = store_file(
        _sessions(),
        args.name,
        args.file,
        settings=settings,
        fmt=args.format,
        client_id=args.client,
        replace=args.replace,
        keep_strings=args.keep_strings,
    )
    owner = f"client {args.client}'s own" if args.client else "shared"
    print(uploads.describe_added(added, owner))
    return 0


def cmd_datasets_list(args: argparse.Namespace) -> int:
    from aia_engine.datasets import sample_names
    from aia_engine.datasets.samples import sample_view
    from aia_engine.datasets.store import list_datasets

    stored = list_datasets(_sessions(), every=True)
    samples = [sample_view(n) for n in sample_names()]
    if args.json:
        print(json.dumps([*stored, *samples]))
        return 0
    if not stored:
        print("no datasets yet; add one with: aia-engine datasets add NAME FILE")
    for d in stored:
        owner = d["client_id"] or "shared"
        print(
            f"{d['name']:<28} {d['rows']:>8} rows {d['size_bytes']:>12} bytes  {d['id']}  {owner}"
        )
    for s in samples:
        print(f"{s['name']:<28} {s['rows']:>8} rows {'(sample)':>18}  {s['description']}")
    return 0


def cmd_datasets_delete(args: argparse.Namespace) -> int:
    from aia_engine.datasets.store import delete_dataset

    delete_dataset(_sessions(), args.name, client_id=args.client)
    print(f"dataset {args.name} deleted")
    return 0
