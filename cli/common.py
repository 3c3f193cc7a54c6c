"""What the `aia-engine` commands share: settings completed from a running `dev`."""

from __future__ import annotations

import json
from typing import Any

from aia_engine.settings import Settings, get_settings

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
