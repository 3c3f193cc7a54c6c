"""`aia-engine clients ...` against the test database; the printed credentials really work."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from aia_engine.auth.oauth import ClientAuth, OAuthError, authenticate
from tests.integration.conftest import ROOT, Services


def cli(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "clients", *args],
        env=services.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def can_authenticate(services: Services, client_id: str, secret: str) -> bool:
    try:
        authenticate(services.sessions, ClientAuth(client_id, secret, via_basic=False))
    except OAuthError:
        return False
    return True


def test_create_list_rotate_disable(services: Services) -> None:
    made = cli(
        services,
        "create",
        "--name",
        "nightly batch",
        "--tier",
        "business",
        "--scopes",
        "read write",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    record: dict[str, Any] = json.loads(made.stdout)
    client_id, secret = record["client_id"], record["client_secret"]
    assert record["tier"] == "business" and record["scopes"] == "read write"
    assert can_authenticate(services, client_id, secret)

    listed = cli(services, "list")
    assert client_id in listed.stdout and secret not in listed.stdout

    rotated = cli(services, "rotate-secret", client_id)
    new_secret = rotated.stdout.split()[1]
    assert not can_authenticate(services, client_id, secret)
    assert can_authenticate(services, client_id, new_secret)

    assert cli(services, "disable", client_id).returncode == 0
    assert not can_authenticate(services, client_id, new_secret)
    assert "DISABLED" in cli(services, "list").stdout


def test_bad_input_is_explained(services: Services) -> None:
    out = cli(services, "create", "--name", "x", "--scopes", "read superuser")
    assert out.returncode == 2 and "unknown scope 'superuser'" in out.stderr
    missing = cli(services, "disable", "aia_nobody")
    assert missing.returncode == 2 and "not found" in missing.stderr
