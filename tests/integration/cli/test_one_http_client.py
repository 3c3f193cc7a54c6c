"""There is one HTTP client in the repository, the SDK: every request the CLI's API commands
(`aia-engine batch submit`, `aia-engine datasets upload`) send to a live server carries the
SDK's User-Agent. A second client brought back would show its own (httpx's by default)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.types import ASGIApp, Receive, Scope, Send

from aia_engine.db.models import StageRun, Task
from api.app import create_app
from tests.integration.api.conftest import Credentials, make_client, serve  # noqa: F401
from tests.integration.conftest import ROOT, Services

pytestmark = pytest.mark.timeout(120)

Seen = list[tuple[str, str, str]]
"""(method, path, user agent) of each request the server got."""


class RecordRequests:
    """ASGI middleware in front of the real API: notes each request's method, path and agent."""

    def __init__(self, app: ASGIApp, seen: Seen) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            agent = headers.get(b"user-agent", b"").decode()
            self.seen.append((scope["method"], scope["path"], agent))
        await self.app(scope, receive, send)


@pytest.fixture
def recorded_api(services: Services) -> Iterator[tuple[str, Seen]]:
    seen: Seen = []
    app = create_app(services.settings)
    app.add_middleware(RecordRequests, seen=seen)
    server, thread, url = serve(app)
    yield url, seen
    server.should_exit = True
    thread.join(15)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=90)  # fmt: skip


def test_the_batch_and_upload_commands_send_every_request_through_the_sdk(
    services: Services,
    recorded_api: tuple[str, Seen],
    make_client: Callable[..., Credentials],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, seen = recorded_api
    creds = make_client(name="one client")
    env = {**services.env, "AIA_API_URL": url, "AIA_CLIENT_ID": creds.client_id,
           "AIA_CLIENT_SECRET": creds.client_secret}  # fmt: skip
    tasks = tmp_path / "tasks.jsonl"
    noop = {"task_type": "batch", "workflow": {"only": {"agent": "noop"}}}
    tasks.write_text("".join(json.dumps({**noop, "description": f"row {n}"}) + "\n"
                             for n in range(150)))  # fmt: skip
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,x\n2,y\n")
    try:
        batch = run_cli(env, "batch", "submit", str(tasks), "--no-progress", "--json")
        upload = run_cli(env, "datasets", "upload", str(rows), "--name", "rows", "--no-progress")
    finally:
        with services.sessions.begin() as session:  # no worker runs them: take them away
            mine = Task.client_id == creds.client_id
            ids = session.query(Task.id).filter(mine).scalar_subquery()
            session.execute(
                update(StageRun).where(StageRun.task_id.in_(ids)).values(status="cancelled")
            )
            session.execute(update(Task).where(mine).values(status="cancelled"))
    assert batch.returncode == 0, batch.stderr
    assert json.loads(batch.stdout)["accepted"] == 150
    assert upload.returncode == 0 and "2 rows" in upload.stdout, upload.stderr
    paths = {path for _, path, _ in seen}
    assert {"/auth/token", "/tasks/batch-submit", "/datasets"} <= paths, seen
    assert [(m, p) for m, p, _ in seen].count(("POST", "/tasks/batch-submit")) == 2
    others = [(m, p, agent) for m, p, agent in seen if not agent.startswith("aia-api-client/")]
    assert not others, f"requests not sent by the SDK: {others}"
