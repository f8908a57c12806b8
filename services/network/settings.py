"""The network service's settings: the shared sections plus ``[network]``.

Built once in ``__main__`` with :func:`shared.config.load`; every ``[network]``
field can also be set as ``NIMBUS_NETWORK_<FIELD>`` (``NIMBUS_NETWORK_PROJECT_SUPERNET``).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec

from services.network.macs import parse_prefix
from services.network.subnets import DEFAULT_PREFIXLEN, MAX_PREFIXLEN, MIN_PREFIXLEN
from shared.config import (
    AmqpSettings,
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    ShutdownSettings,
)

# Every floating address gets a row: a /16 is the largest pool.
FLOATING_POOL_MIN_PREFIXLEN = 16


class NetworkSettings(msgspec.Struct, frozen=True, kw_only=True):
    project_supernet: str = "10.0.0.0/8"
    """IPv4 range carved into the subnets of project networks, in order of creation
    (the n-th subnet made is the n-th block of ``default_prefixlen``). A /8 holds
    16,384 /22s: that many projects' first subnets, fewer as default networks grow.
    Changing it on a live deployment does not move existing subnets: new ones are
    carved from the new range at the next index, past any block already taken."""
    default_prefixlen: Annotated[int, msgspec.Meta(ge=MIN_PREFIXLEN, le=MAX_PREFIXLEN)] = \
        DEFAULT_PREFIXLEN
    """Prefix length of a project's default network, and of each subnet added to it
    when it is full (and of a network the management command makes without
    ``--cidr``). /22 is 1,021 server addresses, 25 times the default quota of 40
    servers; a /24 (253) was the size before it was configurable. Every address
    gets a row when its subnet is made (a /16 is 65,533). Existing networks keep
    their size; only subnets made after a change have the new one."""
    max_subnets_per_network: Annotated[int, msgspec.Meta(ge=1)] = 256
    """How many subnets a default network may have: when it is full and has this
    many, a create server ends in ERROR "No fixed IP addresses available ...". 256
    /22s are 261,376 servers, a 64th of a /8; 1 means a default network never grows."""
    default_network_name: str = "private"
    """Name of the network every project gets on first use; it is the key of the
    server's ``addresses`` in the API (``{"private": [...]}``)."""
    mac_prefix: str = "fa:16:3e"
    """Leading octets (hex, ``:``-separated, 0 to 5 of them) of every MAC handed out;
    the rest is random. The default is OpenStack's, locally administered and unicast.
    A longer prefix leaves fewer random octets and so more collisions (each one
    costs a retry)."""
    floating_pool_name: str = "public"
    """Name of the floating IP pool (``pool`` in ``os-floating-ips``)."""
    floating_pool_cidr: str = "15.126.0.0/24"
    """IPv4 range of the floating IP pool; its network and broadcast addresses are
    not handed out. The service writes a row per address on first use, so it is
    at most a /16 (65,534 addresses). Changing it on a live deployment adds the
    new addresses and drops the free ones outside the range; allocated ones stay
    with their projects until deallocated. Every network service process must
    have the same pool."""
    reservation_ttl_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    """A fixed IP reserved by create server for a server that was never written
    (the API stopped between the two) is freed after this many seconds; one
    reserved for a deleted server is freed at the next sweep. Must be longer
    than a create request can take."""
    reservation_sweep_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    """Seconds between sweeps of such reservations; each is one UPDATE."""

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a ValidationError, which
        # shared.config reports as a bad configuration at start.
        supernet = ipaddress.IPv4Network(self.project_supernet)
        if supernet.prefixlen > self.default_prefixlen:
            raise ValueError(f"project_supernet {supernet} is smaller than one "
                             f"/{self.default_prefixlen} subnet (default_prefixlen)")
        pool = ipaddress.IPv4Network(self.floating_pool_cidr)
        if pool.prefixlen < FLOATING_POOL_MIN_PREFIXLEN:
            raise ValueError(f"floating_pool_cidr {pool} is larger than a "
                             f"/{FLOATING_POOL_MIN_PREFIXLEN}")
        if pool.overlaps(supernet):
            # A server's fixed address could then be another's floating one.
            raise ValueError(f"floating_pool_cidr {pool} overlaps project_supernet {supernet}")
        if not self.floating_pool_name.strip():
            raise ValueError("floating_pool_name must not be empty")
        parse_prefix(self.mac_prefix)
        if not self.default_network_name.strip():
            raise ValueError("default_network_name must not be empty")

    @property
    def supernet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.project_supernet)

    @property
    def floating_pool(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.floating_pool_cidr)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseSettings = DatabaseSettings()
    amqp: AmqpSettings = AmqpSettings()
    log: LogSettings = LogSettings()
    health: HealthSettings = HealthSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    network: NetworkSettings = NetworkSettings()
