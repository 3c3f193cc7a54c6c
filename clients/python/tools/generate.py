"""Regenerate the SDK's generated files from their sources.

    python clients/python/tools/generate.py           # rewrite them
    python clients/python/tools/generate.py --check   # exit 1, naming each file that differs

Each output is derived from the one before, so one command keeps the three in step:

1. `openapi.json`: the server's OpenAPI document (`api.openapi.openapi_document`, built from
   the API's routes and models), with sorted keys, the snapshot the models come from.
2. `aia_client/models.py`: datamodel-code-generator over that snapshot: pydantic v2 models
   with `extra="allow"` (a newer server's fields must not break an older SDK) and enums as
   `Literal`s. The models read the server's answers, and the server validates what it is
   sent, so the schema's bounds (`maxLength`, `minimum`, ...) are left out: a limit a newer
   server widens must not break an older SDK either.
3. `aia_client/_sync/`: unasync over `aia_client/_async/`, the blocking twin of the async
   source (`AIAClient` -> `AIASyncClient`, `await x` -> `x`, `async_sleep` -> `sync_sleep`).

The outputs are committed, not built at install time: the SDK installs without the engine
and without these tools, a change to the API shows up as a reviewable diff of the models,
and tests/unit/clients/test_generated.py fails when a committed file is out of date.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parents[1]  # clients/python
ROOT = SDK.parents[1]  # the engine's repository: `api` and pyproject.toml (ruff's settings)
COMMAND = "python clients/python/tools/generate.py"

OPENAPI = "openapi.json"
MODELS = "aia_client/models.py"
ASYNC = "aia_client/_async"
SYNC = "aia_client/_sync"

DATAMODEL_OPTIONS = [
    "--input-file-type=openapi",
    "--output-model-type=pydantic_v2.BaseModel",
    "--target-python-version=3.11",
    "--disable-timestamp",  # the same input gives the same file
    "--extra-fields=allow",
    "--enum-field-as-literal=all",
    "--use-standard-collections",
    "--use-union-operator",
    "--use-annotated",
    "--use-schema-description",  # schema descriptions become class docstrings
    "--use-field-description",  # and field descriptions attribute docstrings
    "--use-double-quotes",
    "--formatters=builtin",  # ruff formats the result below, with the project's settings
]

# JSON Schema's validation bounds, left out of the models (see 2. above).
BOUNDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    }
)
VALUES = frozenset({"default", "const", "enum", "example", "examples"})  # data, not schemas

# unasync's own table covers __aenter__/__aiter__/StopAsyncIteration/AsyncIterator/...;
# classes named `Async<Thing>` in _async/ become `Sync<Thing>` (found, not listed here).
RENAMES = {
    "_async": "_sync",
    "AIAClient": "AIASyncClient",
    "AIAStreamingClient": "AIASyncStreamingClient",
    "AsyncClient": "Client",
    "AsyncExitStack": "ExitStack",
    "AsyncByteStream": "SyncByteStream",
    "AsyncLock": "SyncLock",
    "async_sleep": "sync_sleep",
    "async_map": "sync_map",
    "aconnect_sse": "connect_sse",
    "aiter_sse": "iter_sse",
    "aclose": "close",
    "aread": "read",
}


def openapi_text() -> str:
    """The server's OpenAPI document as the committed snapshot spells it."""
    from api.openapi import openapi_document

    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def without_bounds(node: Any) -> Any:
    """A copy of a JSON Schema without its validation bounds (a property named `pattern`,
    whose value is a schema, and example values are kept)."""
    if isinstance(node, list):
        return [without_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: value if key in VALUES else without_bounds(value)
        for key, value in node.items()
        if not (key in BOUNDS and isinstance(value, int | float | str | bool))
    }


def ruff_format(text: str, as_path: Path) -> str:
    """`text` with its imports sorted and formatted by ruff, as if it were the file `as_path`
    (so the project's settings apply; unasync's renames can unsort imports)."""
    for command in (["check", "--fix-only", "--select=I"], ["format"]):
        text = subprocess.run(
            [sys.executable, "-m", "ruff", *command, f"--stdin-filename={as_path}", "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def models_text(openapi: str) -> str:
    """datamodel-code-generator's models for the snapshot `openapi`, formatted."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, OPENAPI)  # its name is the generated file's header
        source.write_text(json.dumps(without_bounds(json.loads(openapi)), indent=2))
        output = Path(tmp, "models.py")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                *DATAMODEL_OPTIONS,
                f"--input={source}",
                f"--output={output}",
            ],
            check=True,
            capture_output=True,
        )
        return ruff_format(output.read_text(), SDK / MODELS)


def sync_files(async_dir: Path) -> dict[str, str]:
    """The sync twin of every file under `async_dir`, by path relative to `_sync/`, formatted."""
    import unasync  # type: ignore[import-untyped]

    sources = sorted(async_dir.rglob("*.py"))
    renames = dict(RENAMES)
    for source in sources:
        for name in re.findall(r"^\s*class (Async\w+)", source.read_text(), re.MULTILINE):
            renames.setdefault(name, "Sync" + name.removeprefix("Async"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "_async")
        shutil.copytree(async_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
        rule = unasync.Rule(fromdir="/_async/", todir="/_sync/", additional_replacements=renames)
        unasync.unasync_files([str(copy / s.relative_to(async_dir)) for s in sources], [rule])
        out = Path(tmp, "_sync")
        return {
            str(path.relative_to(out)): ruff_format(
                path.read_text(), SDK / SYNC / path.relative_to(out)
            )
            for path in sorted(out.rglob("*.py"))
        }


def generated(sdk: Path = SDK) -> dict[str, str]:
    """Every generated file's text, by path relative to clients/python, from `sdk`'s sources."""
    openapi = openapi_text()
    files = {OPENAPI: openapi, MODELS: models_text(openapi)}
    files |= {f"{SYNC}/{name}": text for name, text in sync_files(sdk / ASYNC).items()}
    return files


def differences(sdk: Path = SDK) -> list[str]:
    """The generated files under `sdk` that are missing, out of date, or no longer generated."""
    expected = generated(sdk)
    stale = [
        name
        for name, text in expected.items()
        if not (sdk / name).is_file() or (sdk / name).read_text() != text
    ]
    names = (str(path.relative_to(sdk)) for path in sorted((sdk / SYNC).rglob("*.py")))
    return stale + [name for name in names if name not in expected]


def write(sdk: Path = SDK) -> None:
    """Rewrite the generated files under `sdk` (and drop sync files with no async source)."""
    expected = generated(sdk)
    for old in (sdk / SYNC).rglob("*.py"):
        if str(old.relative_to(sdk)) not in expected:
            old.unlink()
    for name, text in expected.items():
        (sdk / name).parent.mkdir(parents=True, exist_ok=True)
        (sdk / name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    if not args.check:
        write()
        return 0
    stale = differences()
    for path in stale:
        sys.stderr.write(f"out of date: clients/python/{path}\n")
    if stale:
        sys.stderr.write(f"run `{COMMAND}` and commit the result\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(SDK)]  # this checkout's `api`, not an installed one
    sys.exit(main())
