from __future__ import annotations

from typing import Any

import pytest

from aia_engine.settings import Settings
from workers.safety import UnsafeWorkerConfig, check_worker, unsafe_settings

SETTINGS = Settings(
    max_stage_timeout_s=100,
    stage_hard_limit_grace_s=10,
    visibility_timeout_s=200,
    max_workflow_duration_s=1000,
    result_expires_s=2000,
)
SAFE: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {"visibility_timeout": 200},
    "result_expires": 2000,
}


def test_the_shipped_config_is_safe() -> None:
    import celeryconfig

    conf = {k: getattr(celeryconfig, k) for k in SAFE}
    assert unsafe_settings(conf, Settings()) == []


def test_safe_config_passes() -> None:
    check_worker(SAFE, SETTINGS)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("task_acks_late", False, "task_acks_late"),
        ("task_reject_on_worker_lost", False, "reject_on_worker_lost"),
        ("worker_prefetch_multiplier", 4, "prefetch"),
        ("broker_transport_options", {"visibility_timeout": 60}, "visibility_timeout"),
        ("result_expires", 500, "result_expires"),
    ],
)
def test_each_unsafe_setting_is_refused(key: str, value: Any, words: str) -> None:
    with pytest.raises(UnsafeWorkerConfig, match=words):
        check_worker({**SAFE, key: value}, SETTINGS)


def test_settings_refuse_a_visibility_timeout_below_the_stage_limit() -> None:
    with pytest.raises(ValueError, match="VISIBILITY_TIMEOUT"):
        Settings(max_stage_timeout_s=100, visibility_timeout_s=50)


def test_settings_accept_the_guides_names_and_normalise_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/db")
    monkeypatch.setenv("JWT_EXPIRY_MINUTES", "15")
    s = Settings()
    assert s.database_url == "postgresql+psycopg://u@h:5432/db" and s.jwt_expiry_minutes == 15


@pytest.fixture
def no_jwt_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "JWT_SECRET_KEY",
        "AIA_JWT_SECRET_KEY",
        "JWT_ALGORITHM",
        "AIA_JWT_ALGORITHM",
        "AIA_WEBHOOK_ENCRYPTION_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_jwt_env")
def test_production_refuses_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="JWT_SECRET_KEY") as info:
        Settings()
    assert "change-me" not in str(info.value)


def test_non_postgres_database_is_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL is the only database"):
        Settings(database_url="sqlite:///x.db")


@pytest.mark.usefixtures("no_jwt_env")
def test_short_jwt_secret_is_refused_and_sized_per_algorithm() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(jwt_secret_key="short")
    with pytest.raises(ValueError, match="at least 64 bytes for HS512"):
        Settings(jwt_secret_key="x" * 40, jwt_algorithm="HS512")
    Settings(jwt_secret_key="x" * 64, jwt_algorithm="HS512")


@pytest.mark.usefixtures("no_jwt_env")
def test_unset_jwt_secret_in_development_is_random_and_long() -> None:
    a, b = Settings(), Settings()
    assert len(a.jwt_secret_key.get_secret_value()) >= 64
    assert a.jwt_secret_key.get_secret_value() != b.jwt_secret_key.get_secret_value()


@pytest.mark.usefixtures("no_jwt_env")
def test_production_needs_a_webhook_encryption_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "p" * 40)
    with pytest.raises(ValueError, match="AIA_WEBHOOK_ENCRYPTION_KEY"):
        Settings()
    monkeypatch.setenv("AIA_WEBHOOK_ENCRYPTION_KEY", "k" * 43 + "=")
    assert Settings().environment == "production"
