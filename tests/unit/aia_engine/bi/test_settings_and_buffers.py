"""Settings the dashboard depends on, and the per-client request sums' memory bound when the
database is unreachable (no server listens on its port)."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aia_engine.bi.cache import LOCK_S
from aia_engine.bi.dashboard import STATEMENT_TIMEOUT_S
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.metrics.client_requests import ClientRequestStats
from aia_engine.settings import Settings
from tests.conftest import wait_until


def test_stale_period_must_outlast_the_fresh_one() -> None:
    with pytest.raises(ValidationError, match=r"AIA_BI_DASHBOARD_STALE_S \(60\) must be longer"):
        Settings(bi_dashboard_ttl_s=600, bi_dashboard_stale_s=60)
    assert Settings(bi_dashboard_ttl_s=60, bi_dashboard_stale_s=61).bi_dashboard_stale_s == 61


def test_a_computation_s_statements_end_before_its_lock() -> None:
    assert STATEMENT_TIMEOUT_S < LOCK_S


def test_a_failed_flush_merges_back_under_the_cap() -> None:
    # A "database" that accepts connections and never answers: the flush hangs until psycopg's
    # connect timeout, and the API keeps recording meanwhile.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings = Settings(
            database_url=f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=1&sslmode=disable"
        )
        engine = make_engine(settings, pool_size=1)
        stats = ClientRequestStats(max_pending=3)
        at = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        for c in ("a", "b"):
            stats.record(c, 10.0, at=at)
        failures: list[BaseException] = []

        def flush() -> None:
            try:
                stats.flush(make_sessions(engine))
            except Exception as exc:
                failures.append(exc)

        flushing = threading.Thread(target=flush)
        flushing.start()
        # a and b are out for the flush; three new client-minutes come in
        wait_until(lambda: stats.pending() == 0, "the flush to take a and b", timeout=5)
        for c in ("c", "d", "e"):
            stats.record(c, 10.0, at=at)
        flushing.join(10)
        engine.dispose()
    assert len(failures) == 1
    assert stats.pending() == 3  # a and b merged back only up to the cap, not 5
