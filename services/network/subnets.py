"""Carving the project supernet into subnets of one prefix length (pure, no I/O).

The n-th subnet carved (n from ``network_subnet_seq``, counted from 0) is the
n-th block of ``prefixlen`` in the supernet; its gateway is the first host and
the addresses handed to servers are the rest but the broadcast (``.2`` to
``.254`` of a /24, 1,021 addresses of a /22).

The prefix length is a setting (``[network] default_prefixlen``), so the index
of a block depends on it. A deployment that moves to a shorter prefix (bigger
blocks) carves past everything made before, since block n of the new size
starts at or after block n of the old; one that moves to a longer prefix lands
on blocks already taken, and :func:`index_after` gives the first index past them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from services.network.errors import SupernetExhausted

DEFAULT_PREFIXLEN = 22
# Bounds on a carved subnet, as on a network given by CIDR (networks.parse_cidr):
# every usable address gets a fixed_ips row (a /16 is 65,533), and a /30 leaves
# one address for a server.
MIN_PREFIXLEN = 16
MAX_PREFIXLEN = 30


@dataclass(frozen=True, slots=True)
class Subnet:
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    first_host: ipaddress.IPv4Address
    """Lowest address given to a server (the one after the gateway)."""
    last_host: ipaddress.IPv4Address
    """Highest address given to a server (the one before the broadcast)."""

    @property
    def host_count(self) -> int:
        return int(self.last_host) - int(self.first_host) + 1


def of_cidr(cidr: ipaddress.IPv4Network) -> Subnet:
    """The gateway and server addresses of any subnet: the first host is the
    gateway; the network and broadcast addresses are not used."""
    base = int(cidr.network_address)
    return Subnet(cidr=cidr, gateway=ipaddress.IPv4Address(base + 1),
                  first_host=ipaddress.IPv4Address(base + 2),
                  last_host=ipaddress.IPv4Address(base + cidr.num_addresses - 2))


def subnet_count(supernet: ipaddress.IPv4Network, prefixlen: int = DEFAULT_PREFIXLEN) -> int:
    """How many subnets of ``prefixlen`` the supernet holds."""
    if supernet.prefixlen > prefixlen:
        return 0
    return 1 << (prefixlen - supernet.prefixlen)


def carve(supernet: ipaddress.IPv4Network, index: int,
          prefixlen: int = DEFAULT_PREFIXLEN) -> Subnet:
    """The ``index``-th subnet (from 0) of ``supernet``; SupernetExhausted past the end."""
    if index < 0:
        raise ValueError(f"subnet index must not be negative, got {index}")
    if index >= subnet_count(supernet, prefixlen):
        raise SupernetExhausted(str(supernet), index, prefixlen)
    size = 1 << (32 - prefixlen)
    base = int(supernet.network_address) + index * size
    return of_cidr(ipaddress.IPv4Network((base, prefixlen)))


def index_after(supernet: ipaddress.IPv4Network, address: ipaddress.IPv4Address,
                prefixlen: int = DEFAULT_PREFIXLEN) -> int:
    """The index of the first block of ``prefixlen`` that starts after ``address``
    (the last address of a subnet in the way)."""
    size = 1 << (32 - prefixlen)
    offset = int(address) - int(supernet.network_address) + 1
    return max(0, -(-offset // size))
