"""Shared test setup: no stray AIA_* settings leak into tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aia_engine.settings import get_settings

# Read once, before any test changes the environment: the service URLs the run was given.
SERVICE_ENV = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "CI")}


@pytest.fixture(autouse=True)
def _clean_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
