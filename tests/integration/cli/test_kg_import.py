"""`aia-engine kg import` and `kg export` against the test database: counts, versions, one
summary event per chunk, per-row errors with their lines, idempotent re-runs, resume after an
interruption, export -> import round trips, and tenancy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from aia_engine.auth.clients import create_client
from tests.conftest import wait_until
from tests.integration.conftest import ROOT, Services

pytestmark = pytest.mark.timeout(120)


def cli(services: Services, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**services.env, "AIA_DATA_DIR": str(data_dir)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def new_client(services: Services, name: str) -> str:
    return create_client(
        services.sessions, name=name, tier="developer", scopes="read write"
    ).client_id


def graph(services: Services, client: str) -> dict[str, Any]:
    """The client's graph as plain data (no versions or times)."""
    with services.sessions() as s:
        nodes = {r.node_id: (r.type, r.properties) for r in s.execute(
            text("SELECT node_id, type, properties FROM kg_nodes WHERE client_id = :c"),
            {"c": client})}  # fmt: skip
        rels = {r.relationship_id: (r.type, r.source_id, r.target_id, r.properties)
                for r in s.execute(text(
                    "SELECT relationship_id, type, source_id, target_id, properties "
                    "FROM kg_relationships WHERE client_id = :c"), {"c": client})}  # fmt: skip
    return {"nodes": nodes, "relationships": rels}


def state(services: Services, client: str) -> tuple[int, int, int]:
    with services.sessions() as s:
        row = s.execute(
            text("SELECT version, nodes, relationships FROM kg_graphs WHERE client_id = :c"),
            {"c": client},
        ).first()
    return (0, 0, 0) if row is None else (row.version, row.nodes, row.relationships)


def events(services: Services, client: str) -> list[dict[str, Any]]:
    with services.sessions() as s:
        rows = s.execute(
            text("SELECT task_id, seq, type, payload FROM task_events WHERE client_id = :c "
                 "ORDER BY id"), {"c": client}).all()  # fmt: skip
    assert all(r.task_id is None for r in rows)
    return [{"seq": r.seq, "type": r.type, **r.payload} for r in rows]


def jsonl(*items: dict[str, Any]) -> str:
    return "".join(json.dumps(i) + "\n" for i in items)


def node(node_id: str, type_: str = "customer", **props: Any) -> dict[str, Any]:
    return {"kind": "node", "node_id": node_id, "type": type_, "properties": props}


def rel(source: str, target: str, type_: str = "PURCHASED", **props: Any) -> dict[str, Any]:
    return {"kind": "relationship", "type": type_, "source": source, "target": target,
            "properties": props}  # fmt: skip


def test_jsonl_import_counts_versions_one_event_per_chunk_and_row_errors_by_line(
    services: Services, tmp_path: Path
) -> None:
    client = new_client(services, "kg-import-jsonl")
    path = tmp_path / "g.jsonl"
    path.write_text(
        jsonl(rel("c1", "p1", amount=10), rel("c2", "p1", amount=20))  # lines 1-2: nodes later
        + '{"kind": "node", "node_id": "broken"\n'  # line 3: bad JSON
        + jsonl(
            node("c1", name="A"), node("c2", name="B"), node("p1", "product", category="Technology")
        )
        + "\n"  # line 7: blank, skipped
        + jsonl(rel("c1", "ghost"), node("c3", name="C"), rel("c3", "p1", amount=5))  # 8-10
    )
    done = cli(services, tmp_path, "kg", "import", str(path), "--client", client,
               "--chunk-size", "2")  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "line 3: not valid JSON" in done.stdout
    assert "line 8: relationship target 'ghost' is not a node" in done.stdout
    assert "7 created, 0 updated, 0 unchanged, 2 errors" in done.stdout
    g = graph(services, client)
    assert set(g["nodes"]) == {"c1", "c2", "c3", "p1"}
    assert g["nodes"]["p1"] == ("product", {"category": "Technology"})
    assert {(t, s, d, p["amount"]) for t, s, d, p in g["relationships"].values()} == {
        ("PURCHASED", "c1", "p1", 10), ("PURCHASED", "c2", "p1", 20), ("PURCHASED", "c3", "p1", 5)
    }  # fmt: skip
    # Node rows (5 with the bad line) in chunks of 2: 3 chunks, the first holds the bad line
    # and c1; relationship rows (4) in chunks of 2: 2 chunks. Each chunk that changed something
    # is one version and one summary event with no task.
    seen = events(services, client)
    assert [e["type"] for e in seen] == ["knowledge_graph.imported"] * 5
    assert [e["seq"] for e in seen] == [1, 2, 3, 4, 5]
    assert [e["graph_version"] for e in seen] == [1, 2, 3, 4, 5]
    assert [e["changes"] for e in seen] == [
        {"created": 1}, {"created": 2}, {"created": 1},
        {"relationship_added": 2}, {"relationship_added": 1},
    ]  # fmt: skip
    assert seen[1]["entity_types"] == ["customer", "product"]
    assert seen[4]["errors"] == 1 and seen[4]["source"] == "import"
    assert state(services, client) == (5, 4, 3)
    with services.sessions() as s:
        stamped = dict(s.execute(text(
            "SELECT node_id, version FROM kg_nodes WHERE client_id = :c"), {"c": client}).all())  # fmt: skip
    assert stamped == {"c1": 1, "c2": 2, "p1": 2, "c3": 3}

    # The same command again: the state file says it is done; nothing is written.
    again = cli(services, tmp_path, "kg", "import", str(path), "--client", client)
    assert "already imported" in again.stdout and again.returncode == 1  # its errors stand
    # Reading the whole file again: every row unchanged, no version, no event.
    whole = cli(services, tmp_path, "kg", "import", str(path), "--client", client,
                "--no-resume", "--json")  # fmt: skip
    summary = json.loads(whole.stdout)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (0, 0, 7)
    assert summary["events"] == 0
    assert len(events(services, client)) == 5 and state(services, client) == (5, 4, 3)

    # A changed property is an update: one chunk, one event, one version.
    path.write_text(jsonl(node("c1", name="A2"), node("c2", name="B"),
                          rel("c1", "p1", amount=11)))  # fmt: skip
    changed = cli(services, tmp_path, "kg", "import", str(path), "--client", client, "--json")
    assert json.loads(changed.stdout)["updated"] == 2, changed.stderr
    assert [e["changes"] for e in events(services, client)[5:]] == [
        {"updated": 1},
        {"updated": 1},
    ]
    assert state(services, client) == (7, 4, 3)


def test_csv_import_reads_numbers_text_and_the_properties_column(
    services: Services, tmp_path: Path
) -> None:
    client = new_client(services, "kg-import-csv")
    path = tmp_path / "g.csv"
    path.write_text(
        "kind,node_id,type,source,target,relationship_id,name,value_score,zip,amount,properties\n"
        'node,c1,customer,,,,"Acme, Inc.",87.5,007,,"{""vip"": true}"\n'
        ",p1,product,,,,Laptop,,,,\n"
        ",,PURCHASED,c1,p1,r1,,,,1200,\n"
        "relationship,,PURCHASED,c1,nope,,,,,3,\n"
        'node,c2,customer,,,,x,,,,{"bad\n'
    )
    done = cli(services, tmp_path, "kg", "import", str(path), "--client", client)
    assert done.returncode == 1, done.stderr
    assert "line 5: relationship target 'nope'" in done.stdout
    assert "line 6: the properties cell is not valid JSON" in done.stdout
    g = graph(services, client)
    assert g["nodes"] == {
        "c1": ("customer", {"name": "Acme, Inc.", "value_score": 87.5, "zip": "007", "vip": True}),
        "p1": ("product", {"name": "Laptop"}),
    }
    assert g["relationships"] == {"r1": ("PURCHASED", "c1", "p1", {"amount": 1200})}


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        (None, "missing.jsonl", "no such file"),
        (b"\xff\xfe not text", "bin.jsonl", "line 1 is not UTF-8"),
        (b"a,b\n1,2\n", "t.csv", "needs a type column"),
        (b'node_id,type\n"a,t\n', "q.csv", "not valid CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_clear_error_not_a_traceback(
    services: Services, tmp_path: Path, content: bytes | None, name: str, says: str
) -> None:
    client = new_client(services, f"kg-bad-{name}")
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    done = cli(services, tmp_path, "kg", "import", str(path), "--client", client)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    assert state(services, client) == (0, 0, 0)


def test_an_unknown_client_is_a_clear_error(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl(node("a")))
    for args in (("import", str(path)), ("export",)):
        done = cli(services, tmp_path, "kg", *args, "--client", "no_such_client")
        assert done.returncode == 2
        assert "client 'no_such_client' not found" in done.stderr
        assert "Traceback" not in done.stderr


def big_graph(path: Path, nodes: int, rels: int) -> None:
    path.write_text(
        jsonl(*(node(f"n{i}", "customer" if i % 2 else "product", score=i) for i in range(nodes)))
        + jsonl(
            *(
                rel(f"n{i % nodes}", f"n{(i * 7 + i // nodes + 1) % nodes}", amount=i)
                for i in range(rels)
            )
        )
    )


def test_an_interrupted_import_resumes_and_ends_with_the_same_graph(
    services: Services, tmp_path: Path
) -> None:
    whole, sliced = new_client(services, "kg-whole"), new_client(services, "kg-sliced")
    path = tmp_path / "g.jsonl"
    big_graph(path, 50, 120)
    assert cli(services, tmp_path, "kg", "import", str(path), "--client", whole).returncode == 0
    # Three chunks (40 + 10 nodes, 40 relationships), stop; then the rest.
    first = cli(services, tmp_path, "kg", "import", str(path), "--client", sliced,
                "--chunk-size", "40", "--max-chunks", "3")  # fmt: skip
    assert first.returncode == 3, first.stdout + first.stderr
    assert "run the same command again to continue" in first.stdout
    assert state(services, sliced)[1:] == (50, 40)
    rest = cli(services, tmp_path, "kg", "import", str(path), "--client", sliced,
               "--chunk-size", "40", "--json")  # fmt: skip
    summary = json.loads(rest.stdout)
    assert rest.returncode == 0 and summary["resumed_rows"] == 90
    assert (summary["rows"], summary["created"], summary["unchanged"]) == (80, 80, 0)
    assert graph(services, sliced) == graph(services, whole)
    assert state(services, sliced)[1:] == (50, 120)
    # Every chunk once: 2 node chunks + 3 relationship chunks, each its own version.
    assert len(events(services, sliced)) == state(services, sliced)[0] == 5


def test_a_killed_import_resumes_where_its_state_file_says(
    services: Services, tmp_path: Path
) -> None:
    whole, killed = new_client(services, "kg-whole-2"), new_client(services, "kg-killed")
    path = tmp_path / "big.jsonl"
    big_graph(path, 2000, 20000)  # distinct relationships: ids derive from the ends
    assert cli(services, tmp_path, "kg", "import", str(path), "--client", whole).returncode == 0
    data = tmp_path / "killed-data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "kg", "import", str(path), "--client", killed,
         "--chunk-size", "100", "--no-progress"],
        env={**services.env, "AIA_DATA_DIR": str(data)}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        files = data / "kg-imports"

        def some_rows_committed() -> bool:
            found = list(files.glob("*.json")) if files.exists() else []
            if not found:
                return False
            try:
                done = json.loads(found[0].read_text())["done"]
            except (ValueError, KeyError):
                return False  # being replaced right now
            return bool(done["relationship"])

        wait_until(some_rows_committed, "a relationship chunk committed", interval=0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert state(services, killed)[2] < 20000  # it really stopped part-way
    rest = subprocess.run(
        [sys.executable, "-m", "cli", "kg", "import", str(path), "--client", killed,
         "--chunk-size", "100", "--json"],
        env={**services.env, "AIA_DATA_DIR": str(data)}, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    assert json.loads(rest.stdout)["resumed_rows"] > 0
    assert graph(services, killed) == graph(services, whole)
    assert state(services, killed)[1:] == (2000, 20000)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_then_import_gives_the_same_graph(
    services: Services, tmp_path: Path, fmt: str
) -> None:
    source, copy = new_client(services, f"kg-src-{fmt}"), new_client(services, f"kg-dst-{fmt}")
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl(
        node("a", name="Acme", zip="007", looks_numeric="12", flag=True, nothing=None,
             tags=["x", 1], nested={"k": [1, {"z": "é"}]}, ratio=0.25, big=10**20,
             text="comma, \"quote\"\nnewline\\backslash\ttab", source="a node's own"),
        node("b", "product", category="Technology", properties="a column named properties"),
        node("c", "empty"),
        rel("a", "b", amount=12.5, date="2024-05-01"),
        {"kind": "relationship", "relationship_id": "given-id", "type": "ABOUT",
         "source": "c", "target": "a", "properties": {"kind": "x", " spaced": 1}},
    ))  # fmt: skip
    assert cli(services, tmp_path, "kg", "import", str(path), "--client", source).returncode == 0
    out = tmp_path / f"export.{fmt}"
    done = cli(services, tmp_path, "kg", "export", "--client", source, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 5 items" in done.stderr
    back = cli(services, tmp_path, "kg", "import", str(out), "--client", copy)
    assert back.returncode == 0, back.stdout + back.stderr
    assert graph(services, copy) == graph(services, source)
    # To stdout, the same bytes as to a file.
    stdout = cli(services, tmp_path, "kg", "export", "--client", copy, "--format", fmt)
    assert stdout.stdout == out.read_text()


def test_importing_into_one_client_leaves_another_untouched(
    services: Services, tmp_path: Path
) -> None:
    a, b = new_client(services, "kg-tenant-a"), new_client(services, "kg-tenant-b")
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl(node("shared", name="A's"), node("p", "product"), rel("shared", "p")))
    assert cli(services, tmp_path, "kg", "import", str(path), "--client", a).returncode == 0
    with services.sessions() as s:
        before = s.execute(text(
            "SELECT node_id, version, updated_at FROM kg_nodes WHERE client_id = :c "
            "ORDER BY node_id"), {"c": a}).all()  # fmt: skip
    a_graph, a_state, a_events = graph(services, a), state(services, a), events(services, a)
    other = tmp_path / "b.jsonl"
    other.write_text(jsonl(node("shared", name="B's"), rel("shared", "p")))
    done = cli(services, tmp_path, "kg", "import", str(other), "--client", b)
    # B has no node "p": A's node of that id is invisible to B's import.
    assert done.returncode == 1 and "relationship target 'p' is not a node" in done.stdout
    assert graph(services, b)["nodes"] == {"shared": ("customer", {"name": "B's"})}
    assert graph(services, a) == a_graph and state(services, a) == a_state
    assert events(services, a) == a_events
    with services.sessions() as s:
        after = s.execute(text(
            "SELECT node_id, version, updated_at FROM kg_nodes WHERE client_id = :c "
            "ORDER BY node_id"), {"c": a}).all()  # fmt: skip
    assert after == before
    exported = cli(services, tmp_path, "kg", "export", "--client", b).stdout
    assert "A's" not in exported and '"p"' not in exported


def test_the_example_business_graph_imports_with_one_command(
    services: Services, tmp_path: Path
) -> None:
    client = new_client(services, "kg-example")
    example = ROOT / "examples" / "knowledge-graph" / "business-graph.jsonl"
    done = cli(services, tmp_path, "kg", "import", str(example), "--client", client)
    assert done.returncode == 0, done.stdout + done.stderr
    g = graph(services, client)
    types = [t for t, _ in g["nodes"].values()]
    assert types.count("customer") >= 100 and types.count("product") >= 50
    assert types.count("feedback") >= 100
    tech = {
        n for n, (t, p) in g["nodes"].items() if t == "product" and p["category"] == "Technology"
    }
    purchases = [r for r in g["relationships"].values() if r[0] == "PURCHASED" and r[2] in tech]
    assert len(purchases) >= 20  # the guide's PURCHASED query with LIMIT 20 fills its page
    assert all({"amount", "date"} <= set(r[3]) for r in purchases)
    assert any(p["industry"] == "Technology" for t, p in g["nodes"].values() if t == "customer")
    assert {r[0] for r in g["relationships"].values()} == {"PURCHASED", "GAVE_FEEDBACK", "ABOUT"}
    # The shipped file is what its script writes.
    regenerated = tmp_path / "again.jsonl"
    subprocess.run([sys.executable, str(example.with_name("generate.py")), str(regenerated)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    assert regenerated.read_bytes() == example.read_bytes()


def test_import_rows_writes_nodes_before_the_relationships_that_name_them(
    services: Services,
) -> None:
    from aia_engine.graph.imports import ChunkResult, import_rows, row_from_item

    client = new_client(services, "kg-import-rows")
    items = [rel("a", "b"), node("a"), rel("b", "a"), node("b"), node("c")]
    rows = [row_from_item(item, number) for number, item in enumerate(items, start=1)]
    seen: list[ChunkResult] = []
    summary = import_rows(services.sessions, client, rows, chunk_size=2, on_chunk=seen.append)
    assert [(c.kind, c.rows, c.created, c.version) for c in seen] == [
        ("node", 2, 2, 1), ("node", 1, 1, 2), ("relationship", 2, 2, 3)
    ]  # fmt: skip
    assert (summary.created, summary.errors, summary.events) == (5, [], 3)
