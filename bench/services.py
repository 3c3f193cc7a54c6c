"""Private services for a benchmark run: a fresh database and a redis-server on a free port."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


@dataclass
class BenchServices:
    database_url: str
    redis_url: str
    tmp: Path


@contextmanager
def private_services(tag: str) -> Iterator[BenchServices]:
    """Create `aia_bench_<tag>_<pid>` on DATABASE_URL's server and start a private Redis;
    export both as DATABASE_URL / REDIS_URL for this process and its children; clean up after."""
    from aia_engine.db.migrate import upgrade
    from aia_engine.embedded import free_port, start_redis
    from aia_engine.settings import get_settings

    tmp = Path(f"/tmp/aia-bench-{tag}-{os.getpid()}")
    redis_url, redis_proc = start_redis(tmp / "redis", port=free_port())
    base = make_url(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"aia_bench_{tag}_{os.getpid()}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = base.set(database=name).render_as_string(hide_password=False)
    os.environ.update({"DATABASE_URL": db_url, "REDIS_URL": redis_url})
    get_settings.cache_clear()
    upgrade(get_settings())
    finished = False
    try:
        yield BenchServices(db_url, redis_url, tmp)
        finished = True
    finally:
        redis_proc.terminate()
        redis_proc.wait(30)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if finished:  # a failed run keeps its logs (and the private Redis's files) to read
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}")
