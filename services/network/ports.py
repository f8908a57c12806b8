"""SQL for the ``ports`` table and the ``fixed_ips`` rows ports hold.

Functions take a connection; the caller owns the transaction. Callers that read
then write one server's ports first take :func:`lock_server`, which serialises
work on that server (a redelivered AllocatePorts racing the first delivery, an
allocate racing a deallocate) until their transaction ends.

A fixed IP row is free (``server_id`` NULL), held by a port of its server, or
reserved for a server not built yet (``server_id`` set, ``reserved_at`` set, no
port): create server reserves the addresses it names, so that no other server
can take them between the request and the build. Taking an address is one
guarded UPDATE (free, or already this server's), so two servers asking for the
same address never both get it.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from services.network import growth
from services.network.errors import NoMoreFixedIps
from services.network.macs import random_mac
from services.network.networks import Network
from shared.contracts.common import Port
from shared.errors import BadRequest, ComputeError

log = structlog.get_logger(__name__)

# Two-key advisory locks live apart from one-key ones (the migration lock), and
# this first key keeps them apart from other users of two-key locks.
_LOCK_CLASS = 0x6E6574  # "net"
# 2**24 random MACs per prefix: a collision is rare, a dozen in a row means the
# space is nearly full or the prefix is wrong.
_MAC_ATTEMPTS = 12

_LOCK_SERVER = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

# A port's cidr and gateway are its address's subnet's (a default network that
# grew has several): found with subnets_cidr_no_overlap's GiST index.
_OF_SERVER = """
SELECT p.id, p.network_id, n.name AS network_name, host(p.address) AS address,
       p.mac::text AS mac, s.cidr::text AS cidr, host(s.gateway) AS gateway
  FROM ports p JOIN networks n ON n.id = p.network_id
  JOIN subnets s ON s.network_id = p.network_id AND s.cidr >>= p.address
 WHERE p.server_id = $1
 ORDER BY p.created_at, p.id"""

# The first free address after $3 that no concurrent allocation is holding:
# SKIP LOCKED makes a second allocator move on to the next row instead of
# waiting for (and then colliding with) the first. The pick starts in the
# partial index fixed_ips_free_idx (network_id, address) WHERE server_id IS NULL
# at $3, the address this process took last (:class:`NextFit`): the entries
# below it, of addresses taken since the last VACUUM, stay in that index as
# dead ones, and a pick from the network's lowest address would step over all
# of them (at 50,000 taken, 269 buffers a pick instead of 23). The subnet comes
# from the GiST index of subnets (cidr >>= address).
_TAKE_ADDRESS = """
UPDATE fixed_ips f SET server_id = $2
  FROM subnets s
 WHERE f.network_id = $1
   AND f.address = (SELECT address FROM fixed_ips
                     WHERE network_id = $1 AND server_id IS NULL AND address > $3::inet
                     ORDER BY address LIMIT 1
                     FOR UPDATE SKIP LOCKED)
   AND s.network_id = f.network_id AND s.cidr >>= f.address
RETURNING f.address, host(f.address) AS text, s.cidr::text AS cidr, host(s.gateway) AS gateway"""

# Lower than any address: a pick after it starts at the network's lowest.
_LOWEST = ipaddress.IPv4Address(0)


class NextFit:
    """Where the next pick of each network starts, in this process: after the
    address taken last (next fit, as PIDs are handed out), so that a pick does
    not step over the addresses taken before it. A pick that finds nothing
    after it starts again from the lowest, so a freed address is handed out
    again once the ones above are taken, and a network grows only when it is
    full. Another process's picks and a restart only make a pick step over a
    few more dead index entries. At most ``limit`` networks are remembered."""

    def __init__(self, limit: int = 10_000) -> None:
        self._after: dict[UUID, ipaddress.IPv4Address] = {}
        self._limit = limit

    def start(self, network_id: UUID) -> ipaddress.IPv4Address:
        return self._after.get(network_id, _LOWEST)

    def took(self, network_id: UUID, address: ipaddress.IPv4Address) -> None:
        if len(self._after) >= self._limit and network_id not in self._after:
            self._after.clear()
        self._after[network_id] = address


# One named address: free, or already this server's (reserved, or taken by an
# earlier attempt of this transaction's work). A concurrent taker of the same
# row waits for this one to end and then finds it no longer free.
_TAKE_FIXED = """
UPDATE fixed_ips f SET server_id = $3,
       reserved_at = CASE WHEN $4::boolean THEN coalesce(f.reserved_at, now()) ELSE f.reserved_at END
  FROM subnets s
 WHERE f.network_id = $1 AND f.address = $2::inet
   AND (f.server_id IS NULL OR f.server_id = $3)
   AND s.network_id = f.network_id AND s.cidr >>= f.address
RETURNING f.address, host(f.address) AS text, s.cidr::text AS cidr, host(s.gateway) AS gateway"""

_FIXED_EXISTS = "SELECT true FROM fixed_ips WHERE network_id = $1 AND address = $2::inet"

# created_at is clock_timestamp(), not now() (the transaction's start), so that
# ports made in one transaction come back in the order they were asked for.
_INSERT_PORT = """
INSERT INTO ports (id, server_id, network_id, address, mac, host, created_at)
VALUES ($1, $2, $3, $4, $5::macaddr, $6, clock_timestamp())
ON CONFLICT (mac) DO NOTHING
RETURNING mac::text"""

# Data-modifying CTEs run to completion whether or not the outer query reads
# them. Every address the server holds is freed: its ports' and its reservations.
_DEALLOCATE = """
WITH gone AS (
    DELETE FROM ports WHERE server_id = $1 RETURNING network_id, address
), freed AS (
    UPDATE fixed_ips SET server_id = NULL, reserved_at = NULL
     WHERE server_id = $1
    RETURNING 1
)
SELECT count(*) FROM gone"""

# Reservations (no port) whose server was deleted, or was never written and
# the reservation is older than $1 seconds (the API died between reserving and
# writing the server).
_SWEEP_RESERVATIONS = """
UPDATE fixed_ips f SET server_id = NULL, reserved_at = NULL
 WHERE f.server_id IS NOT NULL AND f.reserved_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM ports p
                    WHERE p.network_id = f.network_id AND p.address = f.address)
   AND (EXISTS (SELECT 1 FROM servers s WHERE s.id = f.server_id AND s.deleted_at IS NOT NULL)
        OR (NOT EXISTS (SELECT 1 FROM servers s WHERE s.id = f.server_id)
            AND f.reserved_at < now() - make_interval(secs => $1)))
RETURNING f.server_id, host(f.address) AS address"""


async def lock_server(conn: asyncpg.Connection, server_id: UUID) -> None:
    """Hold the server's port lock until the current transaction ends."""
    await conn.execute(_LOCK_SERVER, _LOCK_CLASS, str(server_id))


async def of_server(conn: asyncpg.Connection, server_id: UUID) -> list[Port]:
    """The server's ports, in the order they were allocated."""
    return [Port(id=r["id"], network_id=r["network_id"], network_name=r["network_name"],
                 address=r["address"], mac=r["mac"], cidr=r["cidr"], gateway=r["gateway"])
            for r in await conn.fetch(_OF_SERVER, server_id)]


def _check_address(net: Network, address: str) -> str:
    """``address`` in canonical form; BadRequest unless it is an IPv4 address."""
    try:
        return str(ipaddress.IPv4Address(address.strip()))
    except ValueError:
        raise BadRequest(f"Invalid fixed IP address ({address}) for network "
                         f"{net.id}.") from None


async def take_fixed(conn: asyncpg.Connection, net: Network, address: str, server_id: UUID, *,
                     reserve: bool = False) -> asyncpg.Record:
    """Hold ``address`` of ``net`` for the server (marked reserved if ``reserve``).

    Raises BadRequest when the address is not one servers can have on the
    network (outside its subnet, its network, gateway or broadcast address) or
    when another server holds it (Nova's "Fixed IP address ... is already in
    use", 400).
    """
    canonical = _check_address(net, address)
    row = await conn.fetchrow(_TAKE_FIXED, net.id, canonical, server_id, reserve)
    if row is not None:
        return row
    if not await conn.fetchval(_FIXED_EXISTS, net.id, canonical):
        raise BadRequest(f"Fixed IP address {canonical} is not an address servers can have "
                         f"on network {net.name} ({net.cidr}).")
    raise BadRequest(f"Fixed IP address {canonical} is already in use.")


async def reserve(conn: asyncpg.Connection, server_id: UUID,
                  wanted: Sequence[tuple[Network, str]]) -> int:
    """Reserve each (network, address) for the server: all or nothing (the caller's
    transaction rolls back on BadRequest). Rows are taken in address order, so
    two reservations of overlapping sets cannot deadlock."""
    for net, address in sorted(wanted, key=lambda w: (str(w[0].id), _sort_key(w[1]))):
        await take_fixed(conn, net, address, server_id, reserve=True)
    return len(wanted)


def _sort_key(address: str) -> tuple[int, str]:
    try:
        return int(ipaddress.IPv4Address(address.strip())), ""
    except ValueError:
        return -1, address


async def sweep_reservations(conn: asyncpg.Connection, *, older_than_s: float) -> int:
    """Free reservations nobody will build (see ``_SWEEP_RESERVATIONS``); how many."""
    rows = await conn.fetch(_SWEEP_RESERVATIONS, older_than_s)
    for r in rows:
        log.info("network.reservation_freed", server_id=str(r["server_id"]), address=r["address"])
    return len(rows)


async def allocate(conn: asyncpg.Connection, server_id: UUID, host: str,
                   networks: Sequence[Network], *, mac_prefix: str,
                   fixed: Sequence[str | None] | None = None,
                   grow: growth.Policy | None = None,
                   next_fit: NextFit | None = None) -> list[Port]:
    """Give the server one port on each of ``networks``, in that order.

    Takes the address ``fixed[i]`` names for the i-th network (reserved for
    this server, or free), else the next free address of the network after the
    one ``next_fit`` took last (the lowest without it), and a random unused
    MAC. A full default network gets a further subnet under ``grow``
    (:func:`_take_growing`). Raises NoMoreFixedIps when a network is full and
    BadRequest when a named address is not to be had; the caller's
    transaction must then roll back so the addresses taken so far are freed.
    """
    wanted = list(fixed) if fixed is not None else [None] * len(networks)
    if len(wanted) != len(networks):
        raise ValueError("one fixed address (or None) per network")
    # Named addresses first, in address order (no deadlock between two servers
    # naming overlapping sets), then the ports in the order asked for.
    named: dict[int, asyncpg.Record] = {}
    for i in sorted((i for i, a in enumerate(wanted) if a),
                    key=lambda i: (str(networks[i].id), _sort_key(wanted[i] or ""))):
        named[i] = await take_fixed(conn, networks[i], wanted[i] or "", server_id)
    made: list[Port] = []
    for i, net in enumerate(networks):
        taken = named.get(i) or await _take_next(conn, net, server_id, next_fit)
        if taken is None and grow is not None and net.is_default:
            taken = await _take_growing(conn, net, server_id, grow)
        if taken is None:
            raise NoMoreFixedIps(net.name, net.cidr)
        if next_fit is not None and i not in named:
            next_fit.took(net.id, taken["address"])
        port_id = uuid.uuid4()
        for _ in range(_MAC_ATTEMPTS):
            mac = await conn.fetchval(_INSERT_PORT, port_id, server_id, net.id, taken["address"],
                                      random_mac(mac_prefix), host)
            if mac is not None:
                break
            log.info("network.mac_collision", server_id=str(server_id))
        else:
            raise ComputeError(f"No unused MAC address found under prefix {mac_prefix} "
                               f"after {_MAC_ATTEMPTS} attempts.")
        made.append(Port(id=port_id, network_id=net.id, network_name=net.name,
                         address=taken["text"], mac=mac, cidr=taken["cidr"],
                         gateway=taken["gateway"]))
    return made


async def _take_next(conn: asyncpg.Connection, net: Network, server_id: UUID,
                     next_fit: NextFit | None) -> asyncpg.Record | None:
    """The next free address after the one taken last, else the lowest free one."""
    start = next_fit.start(net.id) if next_fit is not None else _LOWEST
    taken = await conn.fetchrow(_TAKE_ADDRESS, net.id, server_id, start)
    if taken is None and start != _LOWEST:
        taken = await conn.fetchrow(_TAKE_ADDRESS, net.id, server_id, _LOWEST)
    return taken


async def _take_growing(conn: asyncpg.Connection, net: Network, server_id: UUID,
                        policy: growth.Policy) -> asyncpg.Record | None:
    """A free address of a default network that had none: under its growth lock,
    one another allocation's growth made while this one waited, else one of the
    subnet this one adds (NoMoreFixedIps when none can be added)."""
    await growth.lock(conn, net.id)
    if (taken := await conn.fetchrow(_TAKE_ADDRESS, net.id, server_id, _LOWEST)) is not None:
        return taken
    await growth.grow(conn, net.id, net.name, policy)
    return await conn.fetchrow(_TAKE_ADDRESS, net.id, server_id, _LOWEST)


_MOVE = "UPDATE ports SET host = $2 WHERE server_id = $1 AND host IS DISTINCT FROM $2"

# Reservations only: addresses held for the server with no port on them.
_FREE_RESERVATIONS = """
UPDATE fixed_ips f SET server_id = NULL, reserved_at = NULL
 WHERE f.server_id = $1 AND f.reserved_at IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM ports p
                    WHERE p.network_id = f.network_id AND p.address = f.address)"""


async def move_to_host(conn: asyncpg.Connection, server_id: UUID, host: str) -> None:
    """Bind the server's ports to ``host`` (its build went there after another host died)."""
    await conn.execute(_MOVE, server_id, host)


async def free_reservations(conn: asyncpg.Connection, server_id: UUID) -> int:
    """Free the addresses reserved for the server that no port holds; how many."""
    result = await conn.execute(_FREE_RESERVATIONS, server_id)
    return int(result.split()[-1])


async def deallocate(conn: asyncpg.Connection, server_id: UUID) -> int:
    """Delete the server's ports and free their addresses; return how many there were."""
    return await conn.fetchval(_DEALLOCATE, server_id)
