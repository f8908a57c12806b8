"""Carving the project supernet into per-network /24 subnets (pure, no I/O).

The n-th network ever made (n from ``network_subnet_seq``, counted from 0) gets
the n-th /24 of the supernet; its gateway is the first host (``.1``) and the
addresses handed to servers are the rest but the broadcast (``.2`` to ``.254``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from services.network.errors import SupernetExhausted

SUBNET_PREFIXLEN = 24


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


def subnet_count(supernet: ipaddress.IPv4Network, prefixlen: int = SUBNET_PREFIXLEN) -> int:
    """How many subnets of ``prefixlen`` the supernet holds."""
    if supernet.prefixlen > prefixlen:
        return 0
    return 1 << (prefixlen - supernet.prefixlen)


def carve(supernet: ipaddress.IPv4Network, index: int,
          prefixlen: int = SUBNET_PREFIXLEN) -> Subnet:
    """The ``index``-th subnet (from 0) of ``supernet``; SupernetExhausted past the end."""
    if index < 0:
        raise ValueError(f"subnet index must not be negative, got {index}")
    if index >= subnet_count(supernet, prefixlen):
        raise SupernetExhausted(str(supernet), index)
    size = 1 << (32 - prefixlen)
    base = int(supernet.network_address) + index * size
    cidr = ipaddress.IPv4Network((base, prefixlen))
    return Subnet(cidr=cidr, gateway=ipaddress.IPv4Address(base + 1),
                  first_host=ipaddress.IPv4Address(base + 2),
                  last_host=ipaddress.IPv4Address(base + size - 2))
