"""`aia-engine datasets ...` and `aia-engine task-types ...` against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aia_engine.datasets.store import find_dataset
from aia_engine.tasktypes import find_task_type
from tests.integration.conftest import ROOT, Services

pytestmark = pytest.mark.timeout(90)  # a CLI process per step: 20-24 s each


def cli(
    services: Services, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**services.env, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(services: Services, name: str, text: str) -> Path:
    path = services.tmp / name
    path.write_text(text)
    return path


def test_datasets_add_json_jsonl_and_csv_then_list_and_delete(services: Services) -> None:
    array = write(services, "a.json", json.dumps([{"x": 1, "t": "good"}, {"x": 2, "t": "bad"}]))
    lines = write(services, "b.jsonl", '{"x": 1}\n{"x": 2}\n\n{"x": 3}\n')
    table = write(services, "c.csv", "region,revenue,note\nnorth,10.5,ok\nsouth,7,\n")
    for name, path in (("cli_array", array), ("cli_lines", lines), ("cli_csv", table)):
        added = cli(services, "datasets", "add", name, str(path))
        assert added.returncode == 0, added.stderr
        assert name in added.stdout
    assert find_dataset(services.sessions, "cli_lines", client_id=None) is not None
    csv_rows = find_dataset(services.sessions, "cli_csv", client_id=None)
    assert csv_rows == [
        {"region": "north", "revenue": 10.5, "note": "ok"},
        {"region": "south", "revenue": 7, "note": None},
    ]
    listed = cli(services, "datasets", "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("cli_lines "))
    assert " 3 rows " in f" {row} "  # three records
    assert "sample:market_segments" in listed.stdout  # the shipped samples are listed by name
    as_json = json.loads(cli(services, "datasets", "list", "--json").stdout)
    assert {"name": "cli_csv", "rows": 2}.items() <= next(
        d for d in as_json if d["name"] == "cli_csv"
    ).items()

    again = cli(services, "datasets", "add", "cli_array", str(lines))
    assert again.returncode == 2 and "--replace" in again.stderr
    assert cli(services, "datasets", "add", "cli_array", str(lines), "--replace").returncode == 0
    assert find_dataset(services.sessions, "cli_array", client_id=None) == [
        {"x": 1},
        {"x": 2},
        {"x": 3},
    ]

    assert cli(services, "datasets", "delete", "cli_array").returncode == 0
    assert find_dataset(services.sessions, "cli_array", client_id=None) is None
    gone = cli(services, "datasets", "delete", "cli_array")
    assert gone.returncode == 2 and "cli_array" in gone.stderr


def test_datasets_add_refuses_what_it_cannot_store_with_a_clear_message(
    services: Services,
) -> None:
    cases = {
        "notes.txt": ("plain words", "JSON"),
        "scalars.json": ("[1, 2, 3]", "object"),
        "broken.json": ('[{"x": 1}', "line 1"),
        "nan.json": ('[{"x": NaN}]', "NaN"),
        "empty.csv": ("", "header"),
        "ragged.csv": ("a,b\n1,2,3\n", "line 2"),
        "nul.json": ('[{"x": "a\\u0000b"}]', "NUL"),
    }
    for filename, (text, hint) in cases.items():
        refused = cli(services, "datasets", "add", "bad_one", str(write(services, filename, text)))
        assert refused.returncode == 2, (filename, refused.stdout)
        assert hint in refused.stderr, (filename, refused.stderr)
    bad_name = cli(
        services, "datasets", "add", "sample:mine", str(write(services, "ok.json", "[]"))
    )
    assert bad_name.returncode == 2 and "name" in bad_name.stderr
    big = write(services, "big.json", json.dumps([{"i": i} for i in range(2000)]))
    too_big = cli(
        services, "datasets", "add", "big", str(big), env={"AIA_DATASET_MAX_BYTES": "1000"}
    )
    assert too_big.returncode == 2 and "AIA_DATASET_MAX_BYTES" in too_big.stderr
    too_many = cli(
        services, "datasets", "add", "big", str(big), env={"AIA_DATASET_MAX_RECORDS": "100"}
    )
    assert too_many.returncode == 2 and "AIA_DATASET_MAX_RECORDS" in too_many.stderr
    missing = cli(services, "datasets", "add", "x", str(services.tmp / "nowhere.json"))
    assert missing.returncode == 2 and "nowhere.json" in missing.stderr
    assert find_dataset(services.sessions, "bad_one", client_id=None) is None


def test_task_types_create_list_delete(services: Services) -> None:
    body = {
        "description": "analyse, then report",
        "workflow": {
            "analysis": {"agent": "data_analysis_agent", "dependencies": []},
            "report": {"agent": "reporting_agent", "dependencies": ["analysis"]},
        },
    }
    path = write(services, "weekly.json", json.dumps(body))
    made = cli(services, "task-types", "create", "weekly_report", str(path))
    assert made.returncode == 0, made.stderr
    stored = find_task_type(services.sessions, "weekly_report")
    assert stored is not None and stored["description"] == "analyse, then report"
    listed = cli(services, "task-types", "list")
    assert "weekly_report" in listed.stdout and "data_analysis" in listed.stdout
    assert "built-in" in listed.stdout
    as_json = json.loads(cli(services, "task-types", "list", "--json").stdout)
    mine = next(t for t in as_json if t["name"] == "weekly_report")
    assert mine["builtin"] is False and mine["assigned_agents"] == [
        "data_analysis_agent",
        "reporting_agent",
    ]

    again = cli(services, "task-types", "create", "weekly_report", str(path))
    assert again.returncode == 2 and "already" in again.stderr
    builtin = cli(services, "task-types", "create", "data_analysis", str(path))
    assert builtin.returncode == 2 and "built-in" in builtin.stderr
    unknown_agent = write(
        services, "bad.json", json.dumps({"workflow": {"a": {"agent": "oracle_agent"}}})
    )
    bad = cli(services, "task-types", "create", "oracle", str(unknown_agent))
    assert bad.returncode == 2 and "oracle_agent" in bad.stderr
    cycle = write(
        services,
        "cycle.json",
        json.dumps(
            {
                "workflow": {
                    "a": {"agent": "noop", "dependencies": ["b"]},
                    "b": {"agent": "noop", "dependencies": ["a"]},
                }
            }
        ),
    )
    assert cli(services, "task-types", "create", "loop", str(cycle)).returncode == 2
    assert find_task_type(services.sessions, "oracle") is None

    cant = cli(services, "task-types", "delete", "data_analysis")
    assert cant.returncode == 2 and "built-in" in cant.stderr
    assert cli(services, "task-types", "delete", "weekly_report").returncode == 0
    assert find_task_type(services.sessions, "weekly_report") is None
    gone = cli(services, "task-types", "delete", "weekly_report")
    assert gone.returncode == 2 and "weekly_report" in gone.stderr


def test_the_commands_explain_themselves(services: Services) -> None:
    for args in (
        ("datasets", "--help"),
        ("datasets", "add", "--help"),
        ("task-types", "--help"),
        ("task-types", "create", "--help"),
    ):
        shown = cli(services, *args)
        assert shown.returncode == 0 and len(shown.stdout) > 200, args
    add_help = cli(services, "datasets", "add", "--help").stdout
    assert "CSV" in add_help and "JSON Lines" in add_help and "--replace" in add_help
