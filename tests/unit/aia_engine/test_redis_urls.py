"""How a REDIS_URL becomes connection settings, without a server (the forms are exercised
against real redis-servers in tests/integration/redis/test_urls.py)."""

from __future__ import annotations

import ssl

import pytest

from aia_engine.redis.connect import endpoint, multiplexed, normalize, sync_client
from aia_engine.settings import Settings


def test_celery_spellings_are_read_as_redis_py_reads_its_own() -> None:
    assert normalize("redis+socket:///run/r.sock?db=2") == "unix:///run/r.sock?db=2"
    assert (
        normalize("rediss://h:6380/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/ca.pem")
        == "rediss://h:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem"
    )
    assert normalize("rediss://h/0?ssl_cert_reqs=cert_none") == "rediss://h/0?ssl_cert_reqs=none"


def test_a_unix_socket_url_is_stored_in_the_spelling_celery_reads() -> None:
    assert (
        Settings(redis_url="unix:///run/r.sock?db=2").redis_url == "redis+socket:///run/r.sock?db=2"
    )
    assert endpoint("redis+socket:///run/r.sock?db=2").path == "/run/r.sock"


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("rediss://h:6380/0", True),
        ("rediss://h:6380/0?ssl_cert_reqs=CERT_REQUIRED", True),
        ("rediss://h:6380/0?ssl_check_hostname=false", False),
        ("rediss://h:6380/0?ssl_cert_reqs=none", None),
        ("redis://h:6379/0", None),
    ],
)
def test_tls_checks_the_servers_name_unless_the_url_says_otherwise(
    url: str, checked: bool | None
) -> None:
    kwargs = sync_client(url).connection_pool.connection_kwargs
    assert kwargs.get("ssl_check_hostname") == checked


def test_the_multiplexed_client_verifies_tls_by_default_and_allows_the_handshake_time() -> None:
    tls = multiplexed("rediss://cache.example:6380/0")
    where = tls.endpoint
    assert where.ssl is not None and where.ssl.verify_mode == ssl.CERT_REQUIRED
    assert where.ssl.check_hostname and where.server_hostname == "cache.example"
    assert tls.connect_timeout == 2.0
    assert multiplexed("redis://127.0.0.1:6379/0").connect_timeout == 0.25


def test_a_password_never_shows_in_the_endpoints_repr() -> None:
    where = endpoint("redis://alice:s3cret@127.0.0.1:6379/1")
    assert where.password == "s3cret" and "s3cret" not in repr(where)
