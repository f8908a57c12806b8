"""SQL for the ``subnets`` table: carving a network's subnets, and growing a full
default network by one more (issue 14: no fixed ceiling of servers per project).

A network's first subnet (ordinal 0) is made with it (``services.network.networks``);
when an allocation finds no free address on a project's default network,
:func:`grow` adds the next one, carved from the project supernet like the first,
with its ``fixed_ips`` rows, in the allocation's transaction.

Race safety: growing takes the network's growth lock (a transaction-scoped
advisory lock) and looks for a free address again before carving, so that of
several allocations that find the network full at once (on any replica) the
first adds a subnet and the others, once it commits, take addresses from it.
An extra subnet is added only when the allocations holding the last free
addresses roll back afterwards (then the next ones find the network less full
than it looked); it is harmless, just space. The subnets' primary key
(network_id, ordinal) would refuse a second subnet of the same ordinal anyway.

Cost: none on an ordinary allocation. A growth is a few statements plus one
INSERT of the subnet's rows (1,021 for a /22), once per that many allocations.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import structlog

from services.network.errors import NoMoreFixedIps, SupernetExhausted
from services.network.subnets import Subnet, carve, index_after
from shared.errors import Conflict

log = structlog.get_logger(__name__)

# Two-key advisory lock class of a network's growth ("grw"), apart from the
# server port locks' class (services.network.ports).
_LOCK_CLASS = 0x677277
# Each attempt burns one subnet index; more than one is needed only when the
# block is taken by a network made outside the sequence (or with another prefix).
MAX_ATTEMPTS = 8

_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

_NEXT_INDEX = "SELECT nextval('network_subnet_seq') - 1"

# Conflicts with another subnet (overlap: subnets_cidr_no_overlap) or with this
# network's subnet of the same ordinal (the primary key) insert nothing.
_INSERT_SUBNET = """
INSERT INTO subnets (network_id, ordinal, cidr, gateway) VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING ordinal"""

_INSERT_FIXED_IPS = """
INSERT INTO fixed_ips (network_id, address)
SELECT $1, $2::inet + g FROM generate_series(0, $3::integer - 1) AS g"""

_ORDINAL_TAKEN = "SELECT true FROM subnets WHERE network_id = $1 AND ordinal = $2"

# The end of whatever is in the way of a candidate block.
_IN_THE_WAY = """
SELECT host(max(broadcast(cidr))) FROM (
    SELECT cidr FROM subnets WHERE cidr && $1::cidr
    UNION ALL SELECT cidr FROM networks WHERE cidr && $1::cidr) AS taken"""

# Move the sequence past blocks in the way, so the next carve does not meet them
# again. Racy with nextval (it may move the sequence back a little), which only
# costs a later carve another attempt.
_SKIP_TO = """
SELECT setval('network_subnet_seq', $1, false) FROM network_subnet_seq
 WHERE CASE WHEN is_called THEN last_value + 1 ELSE last_value END < $1"""

_SUBNETS_OF = """
SELECT count(*) AS count, min(cidr::text) FILTER (WHERE ordinal = 0) AS first,
       coalesce(max(ordinal), -1) + 1 AS next
  FROM subnets WHERE network_id = $1"""


@dataclass(frozen=True, slots=True)
class Policy:
    """Where a default network's further subnets come from, and how many it may have."""

    supernet: ipaddress.IPv4Network
    prefixlen: int
    max_subnets: int


async def add_carved(conn: asyncpg.Connection, network_id: UUID, ordinal: int, *,
                     supernet: ipaddress.IPv4Network, prefixlen: int) -> Subnet | None:
    """Carve the next free block of ``prefixlen`` from ``supernet`` as the network's
    subnet ``ordinal``, with its fixed_ips rows; None if the network already has a
    subnet of that ordinal. SupernetExhausted when the supernet has no block left."""
    for _ in range(MAX_ATTEMPTS):
        subnet = await next_block(conn, supernet=supernet, prefixlen=prefixlen)
        if await add(conn, network_id, ordinal, subnet):
            return subnet
        if await conn.fetchval(_ORDINAL_TAKEN, network_id, ordinal):
            return None
        await skip_past(conn, subnet.cidr, supernet=supernet, prefixlen=prefixlen)
    raise Conflict(f"No free /{prefixlen} block found in {supernet} after {MAX_ATTEMPTS} "
                   "attempts: other networks are in the way.")


async def next_block(conn: asyncpg.Connection, *, supernet: ipaddress.IPv4Network,
                     prefixlen: int) -> Subnet:
    """The next block in the subnet sequence (it may be taken: inserting it says);
    SupernetExhausted past the supernet's end."""
    return carve(supernet, await conn.fetchval(_NEXT_INDEX), prefixlen)


async def add(conn: asyncpg.Connection, network_id: UUID, ordinal: int, subnet: Subnet) -> bool:
    """Make ``subnet`` the network's subnet ``ordinal`` with its fixed_ips rows;
    False (nothing made) when it overlaps another subnet or the ordinal is taken."""
    if await conn.fetchval(_INSERT_SUBNET, network_id, ordinal, subnet.cidr,
                           subnet.gateway) is None:
        return False
    await conn.execute(_INSERT_FIXED_IPS, network_id, subnet.first_host, subnet.host_count)
    return True


async def skip_past(conn: asyncpg.Connection, cidr: ipaddress.IPv4Network, *,
                    supernet: ipaddress.IPv4Network, prefixlen: int) -> None:
    """After ``cidr`` was found taken: move the subnet sequence past what is in its way."""
    end = await conn.fetchval(_IN_THE_WAY, cidr)
    if end is not None:
        index = index_after(supernet, ipaddress.IPv4Address(end), prefixlen)
        await conn.execute(_SKIP_TO, index + 1)


async def lock(conn: asyncpg.Connection, network_id: UUID) -> None:
    """Hold the network's growth lock until the current transaction ends."""
    await conn.execute(_LOCK, _LOCK_CLASS, str(network_id))


async def grow(conn: asyncpg.Connection, network_id: UUID, name: str, policy: Policy) -> None:
    """Add the next subnet to a full network. Call with its growth lock held
    (:func:`lock`) after looking for a free address once more.

    Raises NoMoreFixedIps, saying why, when the network has ``policy.max_subnets``
    subnets or the supernet has no block of ``policy.prefixlen`` left.
    """
    row = await conn.fetchrow(_SUBNETS_OF, network_id)
    extent = row["first"] if row["count"] <= 1 else (
        f"{row['first']} and {row['count'] - 1} more subnet{'s' if row['count'] > 2 else ''}")
    if row["count"] >= policy.max_subnets:
        raise NoMoreFixedIps(name, extent, f"it has {row['count']} subnets, the most a "
                             f"network may have ({policy.max_subnets})")
    try:
        subnet = await add_carved(conn, network_id, row["next"], supernet=policy.supernet,
                                  prefixlen=policy.prefixlen)
    except SupernetExhausted:
        raise NoMoreFixedIps(name, extent, f"the project supernet {policy.supernet} has no "
                             f"/{policy.prefixlen} left for another subnet") from None
    if subnet is not None:
        log.info("network.subnet_added", network_id=str(network_id), ordinal=row["next"],
                 cidr=str(subnet.cidr), addresses=subnet.host_count)
