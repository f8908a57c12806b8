"""Which client a request comes from, as the login throttle counts clients.

The client is the peer address of the connection. ``X-Forwarded-For`` is
anyone's to write, so it is read only when the peer is one of the configured
``trusted_proxies``: then the client is the rightmost address in it that is not
itself a trusted proxy (each proxy appends the address it got the request
from, so everything left of the last untrusted hop may be made up).

IPv6 clients count by their /64: one subscriber usually holds a whole /64 and
could otherwise take a fresh address, and a fresh allowance, for every login.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The throttling key of the request's client: an IPv4 address, an IPv6 /64,
    or the raw peer name when the peer is not an IP address (a Unix socket)."""
    peer = _parse(request.remote or "")
    if peer is None:
        return request.remote or "unknown"
    client = peer
    if _trusted(peer, trusted):
        for hop in reversed(list(_forwarded_hops(request))):
            parsed = _parse(hop)
            if parsed is None:  # garbage: trust nothing further left
                break
            client = parsed
            if not _trusted(parsed, trusted):
                break
    return address_key(client)


def address_key(address: IPAddress) -> str:
    """IPv4 as is, IPv6 as its /64."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _forwarded_hops(request: web.Request) -> Iterable[str]:
    for header in request.headers.getall("X-Forwarded-For", ()):
        for hop in header.split(","):
            if hop.strip():
                yield hop.strip()


def _trusted(address: IPAddress, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


def _parse(text: str) -> IPAddress | None:
    """An address, also written with a port (``1.2.3.4:80``, ``[::1]:80``); an
    IPv4 address mapped into IPv6 (a dual-stack socket's peer) as IPv4."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
