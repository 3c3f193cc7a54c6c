"""Statements run on psycopg itself, for the few that every task or stage pays for.

SQLAlchemy's per-statement work (connection wrapping, isolation-level switching, statement
compilation, result processing) costs about half a database round trip; on the paths run for
every submission and every stage, that is a measurable share of the latency. These helpers
keep SQLAlchemy's pool and its exceptions: a broken connection is invalidated, and a psycopg
error is raised as the matching `sqlalchemy.exc` class (an `OperationalError` is what the
stage task retries, an `IntegrityError` what an idempotent submission catches).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from aia_engine.db.session import Sessions

Psycopg = psycopg.Connection[Any]


@contextmanager
def direct(sessions: Sessions) -> Iterator[Psycopg]:
    """A pooled connection's psycopg connection in autocommit (each statement commits)."""
    engine: Engine = sessions.kw["bind"]
    pooled = engine.raw_connection()
    conn = cast(Psycopg, pooled.driver_connection)
    try:
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.autocommit = False  # as the pool hands connections out
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) or conn.closed:
            pooled.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
    finally:
        pooled.close()


def in_session(session: Session) -> Psycopg:
    """The psycopg connection under `session`, inside its transaction."""
    return cast(Psycopg, session.connection().connection.driver_connection)


@contextmanager
def sqlalchemy_errors() -> Iterator[None]:
    """Raise psycopg errors as SQLAlchemy's (for statements run with `in_session`)."""
    try:
        yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
