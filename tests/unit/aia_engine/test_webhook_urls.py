"""URL safety: a corpus of unsafe webhook URLs, all refused; no packet leaves this machine
(host names go to a resolver given here, never to DNS)."""

from __future__ import annotations

import ipaddress

import pytest

from aia_engine.errors import UnsafeWebhookUrl
from aia_engine.webhooks.special_addresses import SPECIAL_BLOCKS, SpecialBlock
from aia_engine.webhooks.urls import check_url

FAKE_DNS = {
    "evil.example": ["10.0.0.5"],
    "rebind.example": ["93.184.216.34", "127.0.0.1"],
    "v6private.example": ["fd00::1"],
    "meta.example": ["169.254.169.254"],
    "good.example": ["93.184.216.34"],
    "good6.example": ["2606:4700:4700::1111"],
}


def resolve(host: str, _port: int) -> list[str]:
    return FAKE_DNS.get(host, [])


UNSAFE = [
    # loopback, in every encoding an HTTP client accepts
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "HTTP://127.0.0.1/",
    "http://0x7f000001:80/",
    "http://127.0.0.1:22/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://foo.localhost/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b::7f00:1]/",
    # unspecified and broadcast
    "http://0.0.0.0/",
    "http://0/",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://255.255.255.255/",
    # private
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.0.1]/",
    # link-local and cloud metadata
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.0.1/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://169.254.170.2/v2/credentials",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    # CGNAT, multicast, reserved, documentation and benchmark ranges
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://192.0.0.1/",
    # issue 12: IANA special-purpose blocks that `ipaddress.is_global` lets through
    "http://192.0.0.8/",
    "http://[fec0::1]/",
    "http://[::127.0.0.1]/",
    "http://[5f00::1]/",
    "http://[3fff::1]/",
    # userinfo tricks and parser confusion
    "http://user:pass@93.184.216.34/",
    "http://93.184.216.34@127.0.0.1/",
    "http://127.0.0.1#@93.184.216.34/",
    "http://[::1]:80@93.184.216.34/",
    "http://good.example@evil.example/",
    # other schemes and malformed
    "ftp://93.184.216.34/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "//93.184.216.34/",
    "http:///path",
    "https://[::1]:99999/",
    "http://exa mple.com/",
    "http://127.0.0.1 /",
    "",
    "http://%31%32%37.0.0.1/",
    "http://[fe80::1%25eth0]/",
    "http://127\u30020\u30020\u30021/",
    "http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3/",
    # names that resolve to unsafe addresses (any one unsafe address is enough)
    "http://evil.example/",
    "http://rebind.example/",
    "http://v6private.example/",
    "http://meta.example/",
    "http://unknown.example/",
    "http://metadata.google.internal/computeMetadata/v1/",
]


def test_corpus_is_large_enough() -> None:
    assert len(UNSAFE) >= 60 and len(set(UNSAFE)) == len(UNSAFE)


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeWebhookUrl) as info:
        check_url(url, resolve=resolve)
    assert info.value.details["field"] == "webhook_url" and info.value.details["issue"]


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://93.184.216.34/hook", ("93.184.216.34",)),
        ("https://good.example/aia-webhook", ("93.184.216.34",)),
        ("http://good.example:8080/x?y=1", ("93.184.216.34",)),
        ("https://good6.example/", ("2606:4700:4700::1111",)),
        ("https://[2606:4700:4700::1111]/", ("2606:4700:4700::1111",)),
    ],
)
def test_public_urls_are_accepted_with_their_checked_addresses(
    url: str, addresses: tuple[str, ...]
) -> None:
    assert check_url(url, resolve=resolve).addresses == addresses


def test_operator_allow_list_admits_exact_host_and_port_only() -> None:
    allow = {("127.0.0.1", 9000)}
    assert check_url("http://127.0.0.1:9000/hook", resolve=resolve, allow=allow).addresses == (
        "127.0.0.1",
    )
    for url in (
        "http://127.0.0.1:9001/hook",
        "http://localhost:9000/hook",
        "http://2130706433:9000/x",
        "http://10.0.0.1:9000/",
    ):
        with pytest.raises(UnsafeWebhookUrl):
            check_url(url, resolve=resolve, allow=allow)


def test_the_reason_is_named() -> None:
    with pytest.raises(UnsafeWebhookUrl, match="cloud metadata"):
        check_url("http://169.254.169.254/", resolve=resolve)
    with pytest.raises(UnsafeWebhookUrl, match="carrier-grade NAT"):
        check_url("http://100.64.0.1/", resolve=resolve)


def _url(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"http://{ip}/" if ip.version == 4 else f"http://[{ip}]/"


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Outside every registry block, in unicast space IANA allocates for global use."""
    if any(ip.version == b.network.version and ip in b.network for b in SPECIAL_BLOCKS):
        return False
    if ip.version == 4:
        return ipaddress.ip_address("1.0.0.0") <= ip <= ipaddress.ip_address("223.255.255.255")
    return ip in ipaddress.ip_network("2000::/3")


@pytest.mark.parametrize("block", SPECIAL_BLOCKS, ids=lambda b: str(b.network))
def test_every_iana_special_purpose_block_is_refused(block: SpecialBlock) -> None:
    net = block.network
    for ip in (net.network_address, net.broadcast_address):
        with pytest.raises(UnsafeWebhookUrl):
            check_url(_url(ip), resolve=resolve)
        with pytest.raises(UnsafeWebhookUrl):  # and when a host name resolves to it
            check_url("http://h.example/", resolve=lambda _h, _p, ip=ip: [str(ip)])
    outside = []
    if int(net.network_address) > 0:
        outside.append(net.network_address - 1)
    if int(net.broadcast_address) < (2**32 if net.version == 4 else 2**128) - 1:
        outside.append(net.broadcast_address + 1)
    for ip in outside:
        if _public(ip):
            assert check_url(_url(ip), resolve=resolve).addresses == (str(ip),)


def test_the_table_holds_both_registries() -> None:
    v4 = [b for b in SPECIAL_BLOCKS if b.network.version == 4]
    v6 = [b for b in SPECIAL_BLOCKS if b.network.version == 6]
    assert len(v4) >= 25 and len(v6) >= 25
    assert all(b.name and b.rfc.startswith("RFC") for b in SPECIAL_BLOCKS)
    assert len({b.network for b in SPECIAL_BLOCKS}) == len(SPECIAL_BLOCKS)


def test_a_special_block_is_named_in_the_reason() -> None:
    with pytest.raises(UnsafeWebhookUrl, match=r"192\.0\.0\.0/24 \(IETF Protocol Assignments"):
        check_url("http://192.0.0.200/", resolve=resolve)
    with pytest.raises(UnsafeWebhookUrl, match="site-local"):
        check_url("http://[fec0::1]/", resolve=resolve)
