"""What the `aia-engine` commands share: settings completed from a running `dev`, and the
SDK client (`aia_client`) of the commands that talk to the HTTP API."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from aia_engine.settings import Settings, get_settings

if TYPE_CHECKING:
    from aia_client import AIAAPIError, AIASyncClient

SERVICES_FILE = "services.json"


def resolved_settings(base: Settings | None = None) -> Settings:
    """Settings, completed from a running `aia-engine dev`'s services file when URLs are unset."""
    settings = base or get_settings()
    if settings.database_url and settings.redis_url:
        return settings
    path = settings.data_dir / SERVICES_FILE
    if not path.exists():
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL are not set and no `aia-engine dev` is running here; "
            "start `aia-engine dev` or set both URLs"
        )
    found = json.loads(path.read_text())
    return settings.model_copy(
        update={
            "database_url": settings.database_url or found["database_url"],
            "redis_url": settings.redis_url or found["redis_url"],
        }
    )


def cli_sessions() -> Any:
    """A one-connection session factory for a command that talks to PostgreSQL directly."""
    from aia_engine.db.session import make_engine, make_sessions

    return make_sessions(make_engine(resolved_settings(), pool_size=1))


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that talks to the HTTP API (credentials come from the
    environment only: AIA_CLIENT_ID and AIA_CLIENT_SECRET, never from the command line)."""
    parser.add_argument("--api-url", help="default AIA_API_URL (http://127.0.0.1:8000)")


def api_client(args: argparse.Namespace, **options: Any) -> AIASyncClient:
    """The SDK client a command talks to the API with: `--api-url` or AIA_API_URL, and the
    client credentials AIA_CLIENT_ID / AIA_CLIENT_SECRET. `options` go to `AIASyncClient`."""
    from aia_client import AIAConfigurationError, AIASyncClient

    settings = get_settings()
    client_id = settings.client_id
    client_secret = settings.client_secret.get_secret_value()
    if not client_id or not client_secret:
        raise RuntimeError(
            "client credentials are missing: set AIA_CLIENT_ID and AIA_CLIENT_SECRET "
            "(aia-engine clients create --name NAME prints them)"
        )
    try:
        return AIASyncClient(
            client_id,
            client_secret,
            "local",
            base_url=getattr(args, "api_url", None) or settings.api_url,
            **options,
        )
    except AIAConfigurationError as exc:
        raise RuntimeError(str(exc)) from exc


def api_refusal(
    exc: AIAAPIError, url: str, what: str = "", hints: dict[int, str] | None = None
) -> str:
    """The message of a command stopped by the API's answer (or by no answer at all)."""
    if exc.status == 0:  # no answer: the network, not the API
        return (
            f"could not reach the API at {url}: {exc.message}; check AIA_API_URL (or --api-url) "
            "and that the API is running"
        )
    hint = {
        401: "check AIA_CLIENT_ID and AIA_CLIENT_SECRET",
        403: "the client needs the write scope",
        **(hints or {}),
    }.get(exc.status)
    refused = f"the API at {url} refused" + (f" {what}" if what else "")
    return f"{refused}: {exc}" + (f"; {hint}" if hint else "")
