"""Where the client connects and how patient it is.

The base URL is, first found:
1. `base_url=` given to the client;
2. `AIA_<ENVIRONMENT>_BASE_URL` for the `environment=` given (`AIA_STAGING_BASE_URL`, ...);
3. `AIA_BASE_URL`;
4. `http://127.0.0.1:8000` when the environment is `local` (an `aia-engine dev` on this machine).

AIA Engine is self-hosted: there is no URL built into the SDK for `production` or `staging`,
so with neither variable set those environments raise `AIAConfigurationError` saying which
variable to set. Credentials default to `AIA_CLIENT_ID` and `AIA_CLIENT_SECRET`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aia_client.errors import AIAConfigurationError

LOCAL_URL = "http://127.0.0.1:8000"
ENVIRONMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


def resolve_base_url(base_url: str | None, environment: str) -> str:
    if not ENVIRONMENT.fullmatch(environment):
        raise AIAConfigurationError(
            f"environment {environment!r} is not a name (letters, digits, underscores)"
        )
    variable = f"AIA_{environment.upper()}_BASE_URL"
    url = base_url or os.environ.get(variable) or os.environ.get("AIA_BASE_URL")
    if not url and environment.lower() == "local":
        url = LOCAL_URL
    if not url:
        raise AIAConfigurationError(
            f"no API URL for environment {environment!r}: pass base_url=, or set {variable} "
            "or AIA_BASE_URL (e.g. http://127.0.0.1:8000 for a local `aia-engine dev`)"
        )
    if not url.startswith(("http://", "https://")):
        raise AIAConfigurationError(f"the API URL must start with http:// or https://: {url!r}")
    return url.rstrip("/")


def resolve_credentials(client_id: str | None, client_secret: str | None) -> tuple[str, str]:
    client_id = client_id or os.environ.get("AIA_CLIENT_ID", "")
    client_secret = client_secret or os.environ.get("AIA_CLIENT_SECRET", "")
    if not client_id or not client_secret:
        raise AIAConfigurationError(
            "client credentials are missing: pass client_id= and client_secret=, or set "
            "AIA_CLIENT_ID and AIA_CLIENT_SECRET (`aia-engine clients create --name NAME` "
            "prints a pair)"
        )
    return client_id, client_secret


@dataclass(frozen=True)
class Config:
    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 30.0
    """Seconds to wait for a connection, a read or a write (not the whole request)."""
    connect_timeout: float = 10.0
    max_retries: int = 3
    """Retries of a request after a network error or a 502/503/504 (when retrying is safe)."""
    max_rate_limit_retries: int | None = 5
    """Retries after a 429, each after the `Retry-After` the server gave. None: no limit (a
    script that must get through a quota however long it takes; stop it with `cancel()`)."""
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    """A 429 asking to wait longer than this is raised at once instead of waited out."""
    max_connections: int = 100
    """Connections kept open per client (HTTP/1.1 keep-alive)."""
    scope: str | None = None
    """OAuth2 scopes to ask for (space-separated); None asks for the client's own."""
    on_retry: Callable[[str, float], None] | None = None
    """Called before each wait to retry with why (`"rate limited (E013)"`, `"HTTP 503"`,
    `"network error"`, ...) and the seconds it will wait: a progress line can say why nothing
    moves. It runs on the thread (or event loop) of the waiting request: keep it quick."""

    @classmethod
    def build(
        cls,
        client_id: str | None,
        client_secret: str | None,
        environment: str,
        base_url: str | None,
        **options: Any,
    ) -> Config:
        """The config of a client given these arguments (module docstring: the look-ups)."""
        client_id, client_secret = resolve_credentials(client_id, client_secret)
        return cls(
            base_url=resolve_base_url(base_url, environment),
            client_id=client_id,
            client_secret=client_secret,
            **options,
        )
