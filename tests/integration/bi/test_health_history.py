"""Health samples: the beat process records them; the dashboard's uptime is their healthy
share; old samples and request figures are pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import text

from aia_engine.bi.dashboard import compute_dashboard
from aia_engine.db.session import make_engine, make_sessions
from aia_engine.embedded import free_port
from aia_engine.ops.health_history import HealthSampler, engine_checks
from tests.conftest import wait_until
from tests.integration.conftest import Services, start_beat, stop_process

pytestmark = pytest.mark.timeout(90)
COUNT = text(
    "SELECT count(*) FROM health_samples WHERE sampled_at > :since AND sampled_at < :until"
)


def test_uptime_is_the_healthy_share_of_samples(services: Services) -> None:
    with services.sessions.begin() as s:
        s.execute(text("DELETE FROM health_samples"))
    client = redis.Redis.from_url(services.redis_url)
    workers = [1]
    base = datetime(2030, 1, 1, tzinfo=UTC)
    clock = iter(base + timedelta(minutes=i) for i in range(10))
    sampler = HealthSampler(
        services.sessions,
        engine_checks(services.sessions, client, lambda: workers[0]),
        interval_s=60,
        keep_days=90,
        clock=lambda: next(clock),
    )
    assert [sampler.sample() for _ in range(3)] == [True, True, True]
    workers[0] = 0  # no worker answers: the sample is unhealthy
    assert sampler.sample() is False
    client.close()
    board = compute_dashboard(services.sessions, "nobody", now=base + timedelta(minutes=5))
    assert board["metrics"]["operations"]["system_uptime"] == 75.0
    assert board["details"]["operations"]["health_samples"] == 4
    with services.sessions() as s:
        row = s.execute(text("SELECT services FROM health_samples WHERE NOT healthy")).scalar_one()
    assert row["workers"] == "unhealthy: no worker answered"
    assert row["database"] == row["redis"] == "healthy"


def test_old_samples_and_request_figures_are_pruned(services: Services) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=91), now - timedelta(days=1)
    with services.sessions.begin() as s:
        for at in (old, recent):
            s.execute(text("INSERT INTO health_samples VALUES (:at, true, '{}')"), {"at": at})
            s.execute(
                text("INSERT INTO api_request_stats VALUES ('prune_me', :at, 1, 5)"), {"at": at}
            )
    sampler = HealthSampler(services.sessions, {}, interval_s=60, keep_days=90, clock=lambda: now)
    sampler.sample()
    with services.sessions() as s:
        samples = (
            s.execute(
                text("SELECT sampled_at FROM health_samples WHERE sampled_at >= :o"), {"o": old}
            )
            .scalars()
            .all()
        )
        stats = (
            s.execute(text("SELECT minute FROM api_request_stats WHERE client_id = 'prune_me'"))
            .scalars()
            .all()
        )
    assert old not in samples and recent in samples and now in samples
    assert stats == [recent]


def test_the_beat_process_records_samples(services: Services) -> None:
    since = datetime.now(UTC)
    beat = start_beat(services, {"AIA_BI_HEALTH_SAMPLE_S": "0.5"}, name="bi-beat")
    try:

        def samples() -> int | None:
            with services.sessions() as s:
                n = int(
                    s.execute(
                        COUNT, {"since": since, "until": since + timedelta(hours=1)}
                    ).scalar_one()
                )
            return n if n >= 2 else None

        wait_until(samples, "the beat to record two health samples", timeout=40)
    finally:
        stop_process(beat)


def test_a_database_outage_shows_as_unhealthy_minutes(services: Services) -> None:
    # The beat's samples while PostgreSQL is unreachable (nothing listens on the port) are kept
    # in memory and written once it answers again.
    down = services.settings.model_copy(
        update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"}
    )
    engine = make_engine(down, pool_size=1)
    unreachable = make_sessions(engine)
    client = redis.Redis.from_url(services.redis_url)
    base = datetime(2032, 1, 1, tzinfo=UTC)
    clock = iter(base + timedelta(minutes=i) for i in range(10))
    sampler = HealthSampler(
        unreachable,
        engine_checks(unreachable, client, lambda: 1),
        interval_s=60,
        keep_days=90,
        clock=lambda: next(clock),
    )
    assert [sampler.sample() for _ in range(3)] == [False, False, False]  # nothing raised
    assert len(sampler.unwritten) == 3
    assert sampler.unwritten.maxlen == 1440  # a day of one-minute samples
    sampler.sessions = services.sessions  # PostgreSQL is back
    sampler.checks = engine_checks(services.sessions, client, lambda: 1)
    assert sampler.sample() is True
    assert len(sampler.unwritten) == 0
    client.close()
    engine.dispose()
    board = compute_dashboard(services.sessions, "nobody", now=base + timedelta(minutes=5))
    assert board["details"]["operations"]["health_samples"] == 4
    assert board["metrics"]["operations"]["system_uptime"] == 25.0  # 3 minutes down of 4
    with services.sessions() as s:
        causes = (
            s.execute(
                text(
                    "SELECT services->>'database' FROM health_samples "
                    "WHERE sampled_at >= :b AND NOT healthy"
                ),
                {"b": base},
            )
            .scalars()
            .all()
        )
    assert causes == ["unhealthy: OperationalError"] * 3
