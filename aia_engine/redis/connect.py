"""Every Redis connection the engine opens is built here, from `REDIS_URL`.

The URL forms are redis-py's (`redis.connection.parse_url`), so the clients of redis-py and the
multiplexed client agree on what a URL means:

- `redis://[[user]:password@]host[:port][/db]`
- `rediss://...` (TLS; `?ssl_cert_reqs=none|optional|required`, `ssl_ca_certs=`, `ssl_certfile=`,
  `ssl_keyfile=`, `ssl_check_hostname=` ...; the certificate is verified by default)
- `unix://[[user]:password@]/path/to/redis.sock[?db=N]` (also kombu's `redis+socket://` form)

A user name means an ACL user (`AUTH user password`); a password alone, the default user.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

import redis
import redis.asyncio
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from aia_engine.redis.multiplexed import Endpoint, MultiplexedRedis

_CERT_SPELLING = re.compile(r"([?&]ssl_cert_reqs=)CERT_(NONE|OPTIONAL|REQUIRED)\b", re.IGNORECASE)
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def normalize(url: str) -> str:
    """kombu spells a unix socket `redis+socket:///path`, redis-py `unix:///path`; Celery's
    documentation spells `ssl_cert_reqs=CERT_REQUIRED`, redis-py `required`. Both spellings
    work here, so one REDIS_URL serves Celery and the engine alike."""
    if url.startswith("redis+socket://"):
        url = "unix://" + url.removeprefix("redis+socket://")
    return _CERT_SPELLING.sub(lambda m: m.group(1) + m.group(2).lower(), url)


def _hostname_check(url: str) -> dict[str, Any]:
    """redis-py 5 does not check a TLS server's host name unless asked (6 does): ask, unless
    the URL says otherwise (URL options override these keyword arguments)."""
    if not url.startswith("rediss://"):
        return {}
    if str(url_kwargs(url).get("ssl_cert_reqs", "required")).lower() == "none":
        return {}  # no verification at all: nothing to check the name against
    return {"ssl_check_hostname": True}


def url_kwargs(url: str) -> dict[str, Any]:
    """What the URL says, as redis-py's connection keyword arguments."""
    return dict(parse_url(normalize(url)))  # type: ignore[no-untyped-call]


def sync_client(
    url: str, *, connect_timeout: float | None = None, timeout: float | None = None
) -> redis.Redis:
    """redis-py's client (a connection pool) for threads: Celery-side code, the API's
    synchronous calls, the CLI."""
    return redis.Redis.from_url(
        normalize(url),
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        **_hostname_check(url),
    )


def async_client(
    url: str, *, connect_timeout: float | None = None, timeout: float | None = None
) -> redis.asyncio.Redis:
    """redis-py's asyncio client: pub/sub on the API's event loop (live event streams)."""
    return redis.asyncio.Redis.from_url(
        normalize(url),
        socket_connect_timeout=connect_timeout,
        socket_timeout=timeout,
        **_hostname_check(url),
    )


def multiplexed(
    url: str, *, connect_timeout: float | None = None, timeout: float = 0.5
) -> MultiplexedRedis:
    """The hot path's client: one connection per process, every call in flight at once; an
    unreachable Redis fails fast (by default 0.25 s to connect, 2 s with the TLS handshake, as
    a remote TLS Redis may need more than 0.25 s; 0.5 s to answer)."""
    where = endpoint(url)
    if connect_timeout is None:
        connect_timeout = 2.0 if where.ssl is not None else 0.25
    return MultiplexedRedis(where, connect_timeout=connect_timeout, timeout=timeout)


def endpoint(url: str) -> Endpoint:
    """Where and how the multiplexed client connects, from the same keyword arguments redis-py
    would use."""
    kw = url_kwargs(url)
    cls = kw.get("connection_class")
    tls = ssl_context(kw) if cls is SSLConnection else None
    host = str(kw.get("host", "localhost"))
    return Endpoint(
        host=host,
        port=int(kw.get("port", 6379)),
        path=str(kw["path"]) if cls is UnixDomainSocketConnection else None,
        db=int(kw.get("db", 0) or 0),
        username=kw.get("username"),
        password=kw.get("password"),
        ssl=tls,
        server_hostname=host if tls is not None and tls.check_hostname else None,
    )


def ssl_context(kw: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context redis-py's `SSLConnection` would build from the same options."""
    reqs = kw.get("ssl_cert_reqs", "required")
    if reqs is None:
        verify = ssl.CERT_NONE
    elif isinstance(reqs, str):
        if reqs not in _CERT_REQS:
            raise ValueError(f"Invalid SSL Certificate Requirements Flag: {reqs}")
        verify = _CERT_REQS[reqs]
    else:
        verify = reqs
    context = ssl.create_default_context()
    check = kw.get("ssl_check_hostname", True)
    context.check_hostname = bool(check) and verify != ssl.CERT_NONE
    context.verify_mode = verify
    if kw.get("ssl_ca_certs") or kw.get("ssl_ca_path") or kw.get("ssl_ca_data"):
        context.load_verify_locations(
            cafile=kw.get("ssl_ca_certs"),
            capath=kw.get("ssl_ca_path"),
            cadata=kw.get("ssl_ca_data"),
        )
    if kw.get("ssl_certfile"):
        context.load_cert_chain(
            kw["ssl_certfile"], keyfile=kw.get("ssl_keyfile"), password=kw.get("ssl_password")
        )
    if kw.get("ssl_min_version") is not None:
        context.minimum_version = ssl.TLSVersion(int(kw["ssl_min_version"]))
    if kw.get("ssl_ciphers"):
        context.set_ciphers(kw["ssl_ciphers"])
    return context
