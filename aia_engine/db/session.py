"""Engine and session factory; one unit of work per request or Celery task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from aia_engine.settings import Settings

Sessions = sessionmaker[Session]


def make_engine(
    settings: Settings, *, pool_size: int | None = None, synchronous_commit: str | None = None
) -> Engine:
    """The engine; `synchronous_commit`, when given, is set on each of its connections.

    Workers pass AIA_WORKER_SYNCHRONOUS_COMMIT (`on` by default: a stage's claim and outcome
    are on disk before they are announced). Everything else keeps the server's setting.
    """
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if synchronous_commit is not None:
        connect_args["options"] = f"-c synchronous_commit={synchronous_commit}"
    engine = create_engine(
        settings.require_database_url(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=10,
        # No pre-ping (it costs a round trip per checkout); stale connections are recycled, and
        # a dropped one surfaces as OperationalError (503 in the API, a retry in workers).
        pool_pre_ping=False,
        pool_recycle=300,
        connect_args=connect_args,
    )
    engine.info = {"relaxed": synchronous_commit == "off"}  # type: ignore[attr-defined]
    return engine


def make_sessions(engine: Engine) -> Sessions:
    # expire_on_commit=False: rows returned by a use case can still be read after commit.
    return sessionmaker(engine, expire_on_commit=False, info=dict(getattr(engine, "info", {})))


def autocommit(sessions: Sessions) -> Connection:
    """A pooled connection in autocommit mode: each statement is its own transaction, with no
    BEGIN/COMMIT round trips. For single statements that are atomic by themselves."""
    engine: Engine = sessions.kw["bind"]
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def unit_of_work(sessions: Sessions) -> Iterator[Session]:
    with sessions.begin() as session:
        yield session
