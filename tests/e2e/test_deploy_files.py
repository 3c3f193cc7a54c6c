"""docker-compose.yml validates (`docker compose config`) and has what an operator relies on.

No Docker engine runs here, but the compose client validates the file. Under CI (CI set) a
missing compose client is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SERVICE_ENV

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "JWT_SECRET_KEY": "compose-check-" + "0" * 40,
    "AIA_WEBHOOK_ENCRYPTION_KEY": "G5yf0nLmAyhuJsN5wP2cJkE1oQ0qx2iYt3K9hQvOa8Y=",
    "AIA_FLOWER_BASIC_AUTH": "operator:compose-check",
}
ENGINE = ("migrate", "api", "worker", "webhooks", "embeddings", "beat", "flower")


def compose_command() -> list[str]:
    """The compose client. It is a tool, not a service: without one the test is skipped,
    except under CI, where it fails (`.ci/run` installs one; it needs no Docker engine)."""
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if SERVICE_ENV["CI"]:
        pytest.fail("no docker compose client: .ci/run installs docker-compose")
    pytest.skip("no docker compose client on this machine")


def run_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`compose config` on a copy of the files, with .env made from .env.example."""
    command = compose_command()
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run([*command, "config"], cwd=tmp_path, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    done = run_config(tmp_path_factory.mktemp("compose"), SECRETS)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed["services"]


def test_compose_config_validates_with_postgres_15_and_redis_7_without_eviction(
    config: dict[str, Any],
) -> None:
    assert config["postgres"]["image"] == "postgres:15"
    assert config["redis"]["image"] == "redis:7"
    assert "noeviction" in config["redis"]["command"]
    assert set(config) == {"postgres", "redis", *ENGINE}


def test_engine_services_wait_for_healthy_services_and_only_need_the_two_urls(
    config: dict[str, Any],
) -> None:
    for name in ENGINE:
        service = config[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
        env = service["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("postgres", "redis", "api", "worker", "webhooks", "embeddings", "flower"):
        assert "healthcheck" in config[name], name


def test_workers_scale_each_as_its_own_node(config: dict[str, Any]) -> None:
    worker = config["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N works
    assert worker["command"][-2:] == ["--hostname", "worker@%h"]  # the container's hostname
    assert worker["stop_grace_period"]  # room for a warm shutdown


def test_compose_refuses_to_run_without_the_secrets(tmp_path: Path) -> None:
    done = run_config(tmp_path, {})
    assert done.returncode != 0
    assert "JWT_SECRET_KEY" in done.stderr
