"""Shared test setup: no stray AIA_* settings leak into tests, and waiting on conditions."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from aia_engine.settings import get_settings

# Read once, before any test changes the environment: the service URLs the run was given.
SERVICE_ENV = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "CI")}

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _clean_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def wait_until(
    predicate: Callable[[], T],
    what: str | Callable[[], str],
    *,
    timeout: float = 30,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    A test waits for the thing a fixed sleep would stand for (a row, a log line, a count), so it
    goes on as soon as that holds and fails with what it waited for when it never does. `what`
    (or what it returns, for a message built only on failure, such as a log's tail) names the
    condition; exceptions listed in `ignore` count as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            found = predicate()
        except ignore as exc:
            found, last = None, exc  # type: ignore[assignment]
        else:
            if found:
                return found
            last = found
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout}s waiting for {said} (last: {last!r})")
        time.sleep(interval)


def popen_to_log(argv: list[str], *, log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen` with stdout and stderr going to the file `log`. The parent's handle is
    closed at once (the child has its own copy), so no open file is left to the garbage
    collector, which would report it as an unraisable ResourceWarning."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def flush_redis(url: str) -> None:
    """FLUSHDB on `url`, with the connection closed after (a client left to the garbage
    collector is an unraisable ResourceWarning, an error in this suite)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def wait_http_up(
    proc: subprocess.Popen[bytes], url: str, log: Path, *, timeout: float = 30
) -> None:
    """Until the server process `proc` answers `url`; fails at once, with its log, if it exits."""

    def answers() -> bool:
        assert proc.poll() is None, log.read_text()
        httpx.get(url, timeout=1)
        return True

    wait_until(answers, log.read_text, timeout=timeout, interval=0.2, ignore=(httpx.HTTPError,))
