"""Webhook URL safety: only http(s) URLs whose every address is publicly routable. Pure
(the resolver is an argument; `system_resolver` is the real one).

Refused: other schemes; userinfo (`user@host` tricks); percent-encoded or non-ASCII hosts;
`localhost` and `*.localhost`; loopback, private, link-local, CGNAT, multicast, unspecified,
reserved and cloud-metadata addresses; every block of the IANA IPv4 and IPv6 special-purpose
registries (`special_addresses`, including those marked globally reachable) and IPv6 outside
2000::/3 (site-local fec0::/10, IETF-reserved space); in IPv4, IPv6, IPv4-mapped / 6to4 /
NAT64 / Teredo forms and in the odd IPv4 encodings that HTTP clients accept (`2130706433`,
`0x7f000001`, `0177.0.0.1`, `127.1`). A host name is resolved and refused if ANY address is unsafe, since a
connection may use any of them; delivery must resolve again and connect to a checked address.
An operator allow-list of exact (host, port) pairs admits internal receivers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from aia_engine.errors import UnsafeWebhookUrl
from aia_engine.webhooks.special_addresses import IPV6_GLOBAL_UNICAST, special_block

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOSE_IPV4 = re.compile(r"^[0-9a-fx.]+$")
_MAX_URL = 2048


@dataclass(frozen=True)
class SafeTarget:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    """Checked addresses; a delivery connects to one of these, never resolving again on its own."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(
    url: str, *, resolve: Resolver = system_resolver, allow: Collection[tuple[str, int]] = ()
) -> SafeTarget:
    """A `SafeTarget` for `url`, or `UnsafeWebhookUrl` saying why not."""
    scheme, host, port = _split(url)
    literal = _ip_literal(host)
    if (host, port) in allow:  # exact host as written, and port
        addresses = [str(literal)] if literal is not None else resolve(host, port)
        return SafeTarget(url, scheme, host, port, tuple(addresses))
    if literal is not None:
        _check_address(url, literal)
        return SafeTarget(url, scheme, host, port, (str(literal),))
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeWebhookUrl(url, "localhost is not a public host")
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeWebhookUrl(url, f"host {host!r} does not resolve")
    for address in addresses:
        _check_address(url, ipaddress.ip_address(address.split("%")[0]))
    return SafeTarget(url, scheme, host, port, tuple(addresses))


def _split(url: str) -> tuple[str, str, int]:
    """Scheme, host (lower case, no trailing dot) and port of an acceptable-looking URL."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL:
        raise UnsafeWebhookUrl(str(url), f"must be a URL of at most {_MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) > 126 for ch in url):
        raise UnsafeWebhookUrl(url, "contains whitespace, control or non-ASCII characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeWebhookUrl(url, "only http and https URLs are accepted")
    if "@" in parts.netloc:
        raise UnsafeWebhookUrl(url, "user information in the URL is not accepted")
    if "%" in parts.netloc:
        raise UnsafeWebhookUrl(url, "percent-encoded hosts and IPv6 zone ids are not accepted")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeWebhookUrl(url, "has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhookUrl(url, "has an invalid port") from exc
    return scheme, host, port


def check_address(address: str) -> None:
    """Raise `UnsafeWebhookUrl` unless `address` is a publicly routable unicast address."""
    _check_address(address, ipaddress.ip_address(address.split("%")[0]))


def _ip_literal(host: str) -> IPAddress | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    if _LOOSE_IPV4.match(host):
        # What inet_aton (and so many HTTP clients) accept: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _check_address(url: str, ip: IPAddress) -> None:
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            _check_address(url, inner)
    reasons = [
        (ip in METADATA, "a cloud metadata address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a globally routable address"),
    ]
    for unsafe, reason in reasons:
        if unsafe:
            raise UnsafeWebhookUrl(url, f"{ip} is {reason}")
    block = special_block(ip)
    if block is not None:
        raise UnsafeWebhookUrl(
            url, f"{ip} is in the special-purpose block {block.network} ({block.name}, {block.rfc})"
        )
    if isinstance(ip, ipaddress.IPv6Address) and ip not in IPV6_GLOBAL_UNICAST:
        kind = "a deprecated site-local address" if ip.is_site_local else "IETF-reserved space"
        raise UnsafeWebhookUrl(url, f"{ip} is {kind}, outside global unicast 2000::/3")
