"""Per-client datasets over HTTP (POST/GET/DELETE /datasets) on a live server: uploads in
every format, every kind of bad input refused in the envelope with nothing stored, tenancy,
read-only samples and shared datasets, names and ids checked at submission, a real worker
reading the rows, and `aia-engine datasets upload`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from aia_engine.datasets.store import add_dataset, find_dataset, open_dataset
from aia_engine.db.models import Dataset, DatasetRow
from aia_engine.errors import DatasetTooLargeForAgent
from api.app import create_app
from tests.conftest import wait_until
from tests.integration.api.conftest import Credentials, LiveApi, serve, token_for, wait_task
from tests.integration.conftest import ROOT, Services

CSV = "id,region,amount,code,flag\n1,north,10.5,007,\n2,south,7,012,x\n3,north,,,\n"
NDJSON = '{"a": 1, "b": "x"}\n\n{"a": 2.5, "c": [1]}\n'


def upload(
    http: httpx.Client, name: str, body: bytes | str, ctype: str, **params: str
) -> httpx.Response:
    return http.post(
        "/datasets", params={"name": name, **params}, content=body, headers={"content-type": ctype}
    )


def stored_rows(services: Services, name: str) -> int:
    """Rows in dataset_rows of every dataset called `name` (and -1 when none is stored)."""
    with services.sessions.begin() as session:
        ids = session.scalars(select(Dataset.id).where(Dataset.name == name)).all()
        if not ids:
            return -1
        return int(
            session.scalar(
                select(func.count()).select_from(DatasetRow).where(DatasetRow.dataset_id.in_(ids))
            )
            or 0
        )


def test_upload_csv_ndjson_and_json_then_list_get_and_delete(
    services: Services, authed: Callable[..., httpx.Client]
) -> None:
    with authed() as http:
        made = upload(http, "sales", CSV, "text/csv; charset=utf-8")
        assert made.status_code == 201, made.text
        view = made.json()
        assert view["id"].startswith("ds_") and len(view["id"]) == 27
        assert (view["name"], view["rows"], view["format"]) == ("sales", 3, "csv")
        assert view["size_bytes"] == len(CSV) and view["read_only"] is False
        assert view["columns"] == [
            {"name": "id", "type": "integer", "nulls": 0},
            {"name": "region", "type": "string", "nulls": 0},
            {"name": "amount", "type": "number", "nulls": 1},
            {"name": "code", "type": "string", "nulls": 1},  # 007 stays text
            {"name": "flag", "type": "string", "nulls": 2},
        ]
        lines = upload(http, "events", NDJSON, "application/x-ndjson")
        assert lines.status_code == 201, lines.text
        assert lines.json()["columns"] == [
            {"name": "a", "type": "number", "nulls": 0},
            {"name": "b", "type": "string", "nulls": 1},
            {"name": "c", "type": "array", "nulls": 1},
        ]
        array = upload(http, "arr", json.dumps([{"k": True}, {"k": None}]), "application/json")
        assert array.status_code == 201 and array.json()["columns"][0]["type"] == "boolean"
        wrapped = upload(http, "wrapped", json.dumps({"records": [{"k": 1}]}), "application/json")
        assert wrapped.status_code == 201 and wrapped.json()["rows"] == 1
        # What COPY's text format escapes, and what JSON does, survive the trip.
        tricky = [{"s": "back\\slash \\u0000 tab\t new\nline é 😀 \\N", "n": {"x": [1, None]}}]
        odd = upload(
            http, "odd", json.dumps(tricky, ensure_ascii=False).encode(), "application/json"
        )
        assert odd.status_code == 201, odd.text
        owner = odd.json()["client_id"]
        assert find_dataset(services.sessions, "odd", client_id=owner) == tricky

        listed = http.get("/datasets").json()["datasets"]
        names = [d["name"] for d in listed]
        assert names[:5] == ["arr", "events", "odd", "sales", "wrapped"]  # own first
        samples = [d for d in listed if d["name"].startswith("sample:")]
        assert {d["name"] for d in samples} >= {"sample:support_tickets", "sample:market_segments"}
        assert all(d["read_only"] and d["rows"] > 0 for d in samples)

        by_id = http.get(f"/datasets/{view['id']}")
        assert by_id.status_code == 200 and by_id.json() == http.get("/datasets/sales").json()
        assert by_id.json()["columns"] == view["columns"]

        assert http.delete(f"/datasets/{view['id']}").status_code == 204
        gone = http.get("/datasets/sales")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "E004"
        assert http.delete("/datasets/sales").status_code == 404
    assert stored_rows(services, "sales") == -1


BAD_INPUTS = [
    # (name, body, content type, status, code, words in the message)
    ("latin1", b"name,city\nJos\xe9,Paris\n", "text/csv", 422, "E064", "UTF-8"),
    ("ragged", "a,b\n1,2\n3,4,5\n", "text/csv", 422, "E064", "line 3"),
    ("nul_csv", "a,b\n1,x\x00y\n", "text/csv", 422, "E064", "NUL"),
    ("nul_json", '[{"a": "x\\u0000y"}]', "application/json", 422, "E064", "NUL"),
    ("scalar", '[{"a": 1}, 2]', "application/json", 422, "E064", "item 1 is a number"),
    ("line_array", '{"a": 1}\n[1]\n', "application/x-ndjson", 422, "E064", "line 2"),
    ("broken", '[{"a": 1}, {"a": ', "application/json", 422, "E064", "not valid JSON"),
    ("no_records", '{"rows": [{"a": 1}]}', "application/json", 422, "E064", '"records"'),
    ("empty", b"", "text/csv", 422, "E064", "header"),
    ("empty_json", "[]", "application/json", 422, "E064", "no records"),
    ("header_only", "a,b\n", "text/csv", 422, "E064", "no records"),
    ("nan", '{"a": NaN}\n', "application/x-ndjson", 422, "E064", "NaN"),
    ("xml", "<rows/>", "application/xml", 415, "E415", "text/csv"),
    ("bad name!", CSV, "text/csv", 422, "E001", "not valid"),
    ("deep", '[{"a": ' + "[" * 1500 + "]" * 1500 + "}]", "application/json", 422, "E064",
     "nested"),
    ("deep_lines", '{"a": ' + "[" * 1500 + "]" * 1500 + "}\n", "application/x-ndjson", 422,
     "E064", "nested"),
    ("surrogate", '[{"a": "\\ud800"}]', "application/json", 422, "E064", "lone surrogate"),
    ("big_int", '[{"a": 99999999999999999999}]', "application/json", 422, "E064", "64-bit"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "ctype", "status", "code", "words"), BAD_INPUTS)
def test_bad_input_is_refused_in_the_envelope_and_nothing_is_stored(
    services: Services,
    authed: Callable[..., httpx.Client],
    name: str,
    body: bytes | str,
    ctype: str,
    status: int,
    code: str,
    words: str,
) -> None:
    with authed() as http:
        refused = upload(http, name, body, ctype)
        assert refused.status_code == status, refused.text
        error = refused.json()["error"]
        assert error["code"] == code and words in error["message"], error
        assert error["request_id"] and error["timestamp"]
        if name in ("nan", "deep", "deep_lines"):
            assert error["details"]["issue"] == {"nan": "NaN or infinity"}.get(
                name, "nested too deeply"
            )
        listed = http.get("/datasets").json()["datasets"]
        assert not [d for d in listed if not d["shared"]]  # nothing of the client's own
    assert stored_rows(services, name) == -1


def test_a_taken_name_needs_replace_which_keeps_the_id(
    services: Services, authed: Callable[..., httpx.Client]
) -> None:
    with authed() as http:
        first = upload(http, "weekly", CSV, "text/csv").json()
        taken = upload(http, "weekly", NDJSON, "application/x-ndjson")
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "E009"
        assert "replace=true" in taken.json()["error"]["message"]
        bad = upload(http, "weekly", "a,b\n1\n", "text/csv", replace="true")
        assert bad.status_code == 422  # a failed replacement leaves the old rows
        assert stored_rows(services, "weekly") == 3
        again = upload(http, "weekly", NDJSON, "application/x-ndjson", replace="true")
        assert again.status_code == 201, again.text
        assert again.json()["id"] == first["id"] and again.json()["rows"] == 2
        assert upload(http, "w2", CSV, "text/csv", replace="maybe").status_code == 422
    assert stored_rows(services, "weekly") == 2


@pytest.fixture(scope="module")
def small_api(services: Services) -> Iterator[LiveApi]:
    """A server whose datasets may hold 200 bytes and 3 records."""
    settings = services.settings.model_copy(
        update={"dataset_max_bytes": 200, "dataset_max_records": 3}
    )
    app = create_app(settings)
    server, thread, url = serve(app)
    yield LiveApi(url, app, server)
    server.should_exit = True
    thread.join(10)


def test_limits_refuse_with_413_before_or_while_reading(
    services: Services, small_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    token = token_for(small_api, make_client())
    big = "a\n" + "".join(f"{i}\n" for i in range(100))  # 292 bytes, 100 rows
    with small_api.client(headers={"Authorization": f"Bearer {token}"}) as http:
        declared = upload(http, "declared", big, "text/csv")
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "E065"
        assert declared.json()["error"]["details"]["setting"] == "AIA_DATASET_MAX_BYTES"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield big.encode()[:150]
            yield big.encode()[150:]

        streamed = http.post(
            "/datasets",
            params={"name": "streamed"},
            content=chunks(),
            headers={"content-type": "text/csv"},
        )
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "E065"
        rows = upload(http, "rows", "a\n1\n2\n3\n4\n", "text/csv")
        assert rows.status_code == 413
        assert rows.json()["error"]["details"]["setting"] == "AIA_DATASET_MAX_RECORDS"
        assert upload(http, "fits", "a\n1\n2\n3\n", "text/csv").status_code == 201
    for name in ("declared", "streamed", "rows"):
        assert stored_rows(services, name) == -1


def test_a_cut_upload_stores_nothing(
    services: Services, live_api: LiveApi, make_client: Callable[..., Credentials]
) -> None:
    creds = make_client()
    token = token_for(live_api, creds)
    part = "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(20_000))
    where = urlsplit(live_api.url)
    with socket.create_connection((where.hostname, where.port)) as raw:
        raw.sendall(
            (
                f"POST /datasets?name=cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: text/csv\r\nContent-Length: {len(part) * 2}\r\n\r\n"
            ).encode()
            + part.encode()
        )
    # The whole file again: 201, not 409, so the cut one left no dataset behind (a stored
    # or still-open one would hold the name). Until the server has seen the cut, the cut
    # upload still holds the client's one upload slot (429).
    headers = {"Authorization": f"Bearer {token}"}
    with live_api.client(headers=headers) as http:
        whole = wait_until(
            lambda: (r := upload(http, "cut", part, "text/csv")).status_code != 429 and r,
            "the cut upload's slot to be freed",
            timeout=20,
        )
        assert whole.status_code == 201, whole.text
        assert whole.json()["rows"] == 20_000
    assert stored_rows(services, "cut") == 20_000


def test_tenancy_samples_and_shared_datasets_are_read_only(
    services: Services,
    authed: Callable[..., httpx.Client],
    make_client: Callable[..., Credentials],
) -> None:
    add_dataset(services.sessions, "operators_rows", [{"v": 1}], settings=services.settings)
    a, b = make_client(), make_client()
    with authed(creds=a) as alice, authed(creds=b) as bob:
        mine = upload(alice, "private", CSV, "text/csv").json()
        for ref in ("private", mine["id"]):
            for method in ("GET", "DELETE"):
                hidden = bob.request(method, f"/datasets/{ref}")
                assert hidden.status_code == 404, (method, ref, hidden.text)
        assert "private" not in [d["name"] for d in bob.get("/datasets").json()["datasets"]]
        for key, ref in (("data_source", "private"), ("dataset_id", mine["id"])):
            body = {"task_type": "data_analysis", "requirements": {key: ref}}
            refused = bob.post("/tasks/submit", json=body)
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["details"]["field"] == f"requirements.{key}"

        shared = alice.get("/datasets/operators_rows").json()
        assert shared["shared"] is True and shared["read_only"] is True
        for ref in ("operators_rows", shared["id"], "sample:support_tickets"):
            refused = alice.delete(f"/datasets/{ref}")
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "E066"
        sample = alice.get("/datasets/sample:support_tickets").json()
        assert sample["read_only"] is True and sample["rows"] == 30
        assert any(c["name"] == "text" for c in sample["columns"])
        assert bob.get(f"/datasets/{mine['id']}").status_code == 404
    assert stored_rows(services, "private") == 3


def test_unknown_names_and_ids_are_refused_at_submission(
    authed: Callable[..., httpx.Client],
) -> None:
    with authed() as http:
        for key, ref in (
            ("data_source", "no_such_rows"),
            ("dataset_id", "ds_000000000000000000000000"),
            ("dataset_id", "ds_nothex"),
        ):
            refused = http.post(
                "/tasks/submit", json={"task_type": "data_analysis", "requirements": {key: ref}}
            )
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["details"]["field"] == f"requirements.{key}" and ref in error["message"]


@pytest.mark.usefixtures("worker")
def test_a_task_names_an_uploaded_dataset_by_id_and_a_worker_reads_its_rows(
    authed: Callable[..., httpx.Client],
) -> None:
    rows = "".join(f"{i},{'ns'[i % 2]},{i * 1.5}\n" for i in range(1, 12_001))
    with authed() as http:
        made = upload(http, "numbers", "n,side,value\n" + rows, "text/csv").json()
        for key, ref in (("dataset_id", made["id"]), ("data_source", "numbers")):
            flow = {"a": {"agent": "data_analysis_agent", "task": "describe"}}
            r = http.post(
                "/tasks/orchestrate",
                json={"task_type": "custom", "workflow": flow, "requirements": {key: ref}},
            )
            assert r.status_code == 200, r.text
            done = wait_task(http, r.json()["task_id"])
            assert done["status"] == "completed", done
            out = done["results"]["a"]
            assert out["source"] == "dataset:numbers" and out["record_count"] == 12_000
            assert out["statistics"]["n"]["median"] == 6000.5
            assert out["group_by"]["groups"]["n"]["count"] == 6000


def test_a_stored_dataset_streams_in_order_and_is_a_list_only_up_to_the_cap(
    services: Services, make_client: Callable[..., Credentials]
) -> None:
    owner = make_client().client_id
    records = [{"i": i} for i in range(1, 12_346)]
    add_dataset(services.sessions, "ordered", records, settings=services.settings, client_id=owner)
    handle = open_dataset(services.sessions, "ordered", client_id=owner, max_rows=12_344)
    assert handle is not None and handle.rows == 12_345
    assert handle.columns == [{"name": "i", "type": "integer", "nulls": 0}]
    assert list(handle) == records  # chunks of 5,000 through a server-side cursor, in order
    with pytest.raises(DatasetTooLargeForAgent, match="AIA_DATASET_AGENT_MAX_ROWS"):
        handle.records()
    assert open_dataset(services.sessions, "ordered", client_id="someone else", max_rows=1) is None


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "datasets", "upload", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(120)
def test_cli_upload_streams_with_a_progress_bar_and_clear_exit_codes(
    services: Services,
    live_api: LiveApi,
    make_client: Callable[..., Credentials],
    tmp_path: Path,
) -> None:
    creds = make_client()
    env = {
        **services.env,
        "AIA_API_URL": live_api.url,
        "AIA_CLIENT_ID": creds.client_id,
        "AIA_CLIENT_SECRET": creds.client_secret,
    }
    path = tmp_path / "orders.csv"
    path.write_text("order,total\n" + "".join(f"{i},{i % 97}.5\n" for i in range(200_000)))
    done = cli(env, str(path), "--name", "orders", "--progress")
    assert done.returncode == 0, done.stderr
    assert "uploading [" in done.stderr and "100.0%" in done.stderr
    assert "200000 rows" in done.stdout and "ds_" in done.stdout
    as_json = cli(env, str(path), "--name", "orders", "--replace", "--json", "--no-progress")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["rows"] == 200_000
    assert as_json.stderr == ""

    taken = cli(env, str(path), "--name", "orders", "--no-progress")
    assert taken.returncode == 2 and "409" in taken.stderr and "--replace" in taken.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n[2]\n')
    refused = cli(env, str(bad), "--name", "bad_lines")
    assert refused.returncode == 2 and "line 2" in refused.stderr
    missing = cli(env, str(tmp_path / "nowhere.csv"), "--name", "x")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = tmp_path / "rows.txt"
    unknown.write_text("a\n1\n")
    assert "--format" in cli(env, str(unknown), "--name", "x").stderr
    wrong = cli({**env, "AIA_CLIENT_SECRET": "wrong"}, str(path), "--name", "y")
    assert wrong.returncode == 2 and "AIA_CLIENT_SECRET" in wrong.stderr
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    away = cli({**env, "AIA_API_URL": nowhere}, str(path), "--name", "z")
    assert away.returncode == 2 and "could not reach the API" in away.stderr, away.stderr
    assert "refused the upload" not in away.stderr
    assert stored_rows(services, "orders") == 200_000
    assert stored_rows(services, "bad_lines") == -1
