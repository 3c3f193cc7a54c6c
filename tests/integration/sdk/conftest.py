"""Fixtures for the SDK's tests: the API's live server and clients, and SDK clients of it."""

from __future__ import annotations

from tests.integration.api.conftest import authed, live_api, make_client  # noqa: F401
