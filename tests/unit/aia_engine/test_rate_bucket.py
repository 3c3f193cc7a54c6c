"""The rate-limit decision (the reference the Redis script mirrors) and its headers. Pure."""

from __future__ import annotations

from aia_engine.limits.bucket import HOUR, decide
from aia_engine.redis.multiplexed import pack
from aia_engine.tiers import DEFAULT_TIERS

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, the start of a clock hour
FREE = DEFAULT_TIERS["free"]


def run(times: list[float]) -> list[bool]:
    bucket, used, out = None, 0, []
    for now in times:
        d, bucket, used = decide(bucket, used, FREE, now)
        out.append(d.allowed)
    return out


def test_burst_then_refill_at_the_per_minute_rate() -> None:
    assert run([T0] * 21) == [True] * 20 + [False]
    assert run([T0] * 20 + [T0 + 5.9, T0 + 6.0, T0 + 6.0]) == [True] * 20 + [False, True, False]


def test_hourly_cap_on_top_of_the_bucket() -> None:
    times = [T0 + 6.0 * i for i in range(200)]  # one a refill: the bucket never empties
    allowed = run(times)
    assert sum(allowed) == 100 and allowed[:100] == [True] * 100


def test_headers_describe_the_hour_and_the_bucket() -> None:
    d, _, _ = decide(None, 0, FREE, T0 + 10)
    h = d.headers()
    assert h["X-RateLimit-Limit"] == "100" and h["X-RateLimit-Remaining"] == "99"
    assert h["X-RateLimit-Reset"] == str(int(T0) + HOUR) and h["X-RateLimit-Window"] == "3600"
    assert h["RateLimit-Policy"] == '"hour";q=100;w=3600, "burst";q=20;w=120'
    assert h["RateLimit"] == '"hour";r=99;t=3590, "burst";r=19;t=6'
    assert "Retry-After" not in h


def test_retry_after_says_when_a_request_would_pass() -> None:
    bucket, used = None, 0
    for _ in range(20):
        _, bucket, used = decide(bucket, used, FREE, T0)
    denied, _, _ = decide(bucket, used, FREE, T0)
    assert not denied.allowed and denied.headers()["Retry-After"] == "6"
    full, _, _ = decide(None, 100, FREE, T0 + 60)
    assert not full.allowed and full.retry_after == HOUR - 60


def test_resp_packing() -> None:
    assert (
        pack("EVALSHA", "ab", 2, 1.5)
        == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$3\r\n1.5\r\n"
    )
