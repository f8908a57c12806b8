"""SQL for the ``ports`` table and the ``fixed_ips`` rows ports hold.

Functions take a connection; the caller owns the transaction. Callers that read
then write one server's ports first take :func:`lock_server`, which serialises
work on that server (a redelivered AllocatePorts racing the first delivery, an
allocate racing a deallocate) until their transaction ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from shared.contracts.common import Port
from shared.errors import ComputeError
from services.network.errors import NoMoreFixedIps
from services.network.macs import random_mac
from services.network.networks import Network

log = structlog.get_logger(__name__)

# Two-key advisory locks live apart from one-key ones (the migration lock), and
# this first key keeps them apart from other users of two-key locks.
_LOCK_CLASS = 0x6E6574  # "net"
# 2**24 random MACs per prefix: a collision is rare, a dozen in a row means the
# space is nearly full or the prefix is wrong.
_MAC_ATTEMPTS = 12

_LOCK_SERVER = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

_OF_SERVER = """
SELECT p.id, p.network_id, n.name AS network_name, host(p.address) AS address,
       p.mac::text AS mac
  FROM ports p JOIN networks n ON n.id = p.network_id
 WHERE p.server_id = $1
 ORDER BY p.created_at, p.id"""

# The lowest free address that no concurrent allocation is holding: SKIP LOCKED
# makes a second allocator move on to the next row instead of waiting for (and
# then colliding with) the first.
_TAKE_ADDRESS = """
UPDATE fixed_ips SET server_id = $2
 WHERE network_id = $1
   AND address = (SELECT address FROM fixed_ips
                   WHERE network_id = $1 AND server_id IS NULL
                   ORDER BY address LIMIT 1
                   FOR UPDATE SKIP LOCKED)
RETURNING address, host(address) AS text"""

# created_at is clock_timestamp(), not now() (the transaction's start), so that
# ports made in one transaction come back in the order they were asked for.
_INSERT_PORT = """
INSERT INTO ports (id, server_id, network_id, address, mac, host, created_at)
VALUES ($1, $2, $3, $4, $5::macaddr, $6, clock_timestamp())
ON CONFLICT (mac) DO NOTHING
RETURNING mac::text"""

# Data-modifying CTEs run to completion whether or not the outer query reads them.
_DEALLOCATE = """
WITH gone AS (
    DELETE FROM ports WHERE server_id = $1 RETURNING network_id, address
), freed AS (
    UPDATE fixed_ips f SET server_id = NULL
      FROM gone
     WHERE f.network_id = gone.network_id AND f.address = gone.address
       AND f.server_id = $1
    RETURNING 1
)
SELECT count(*) FROM gone"""


async def lock_server(conn: asyncpg.Connection, server_id: UUID) -> None:
    """Hold the server's port lock until the current transaction ends."""
    await conn.execute(_LOCK_SERVER, _LOCK_CLASS, str(server_id))


async def of_server(conn: asyncpg.Connection, server_id: UUID) -> list[Port]:
    """The server's ports, in the order they were allocated."""
    return [Port(id=r["id"], network_id=r["network_id"], network_name=r["network_name"],
                 address=r["address"], mac=r["mac"])
            for r in await conn.fetch(_OF_SERVER, server_id)]


async def allocate(conn: asyncpg.Connection, server_id: UUID, host: str,
                   networks: Sequence[Network], *, mac_prefix: str) -> list[Port]:
    """Give the server one port on each of ``networks``, in that order.

    Takes the lowest free address of each network and a random unused MAC.
    Raises NoMoreFixedIps when a network is full; the caller's transaction must
    then roll back so the addresses taken so far are freed.
    """
    made: list[Port] = []
    for net in networks:
        taken = await conn.fetchrow(_TAKE_ADDRESS, net.id, server_id)
        if taken is None:
            raise NoMoreFixedIps(net.name, net.cidr)
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
                         address=taken["text"], mac=mac))
    return made


async def deallocate(conn: asyncpg.Connection, server_id: UUID) -> int:
    """Delete the server's ports and free their addresses; return how many there were."""
    return await conn.fetchval(_DEALLOCATE, server_id)
