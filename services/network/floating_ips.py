"""SQL for the ``floating_ips`` table: the pool's addresses, their allocation to
projects and their association with servers' fixed addresses.

Functions take a connection; the caller owns the transaction (READ COMMITTED).
Locks are always taken in one order, so two operations never wait on each other
in a circle: the project's floating IP lock (:func:`lock_project`), then a
server's port lock (``ports.lock_server``), then rows.
"""

from __future__ import annotations

import ipaddress
from uuid import UUID

import asyncpg
import structlog

from shared.contracts.floating_ips import FloatingIp

log = structlog.get_logger(__name__)

# Two-key advisory lock class of the per-project floating IP lock (the port
# locks use 0x6E6574, the quota locks 0x71756F74).
_LOCK_CLASS = 0x666970  # "fip"

# The pool's addresses are written in chunks so that a large pool does not make
# one huge statement; a /16 is 65,534 rows.
_CHUNK = 4096

_COLUMNS = """id, host(address) AS address, pool, project_id, server_id,
              host(fixed_address) AS fixed_address, network_id"""

_LOCK_PROJECT = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

_INSERT_POOL = """
INSERT INTO floating_ips (address, pool)
SELECT $1::inet + g, $2 FROM generate_series(0, $3::integer - 1) AS g
ON CONFLICT (address) DO NOTHING"""

# An address already known under another pool name joins the configured pool.
_RENAME_POOL = """
UPDATE floating_ips SET pool = $1 WHERE address BETWEEN $2::inet AND $3::inet AND pool <> $1"""

# Free addresses no longer in the configured range leave; allocated ones stay
# with their projects until deallocated (and leave at a later sync).
_DROP_OUTSIDE = """
DELETE FROM floating_ips
 WHERE project_id IS NULL AND NOT (address BETWEEN $1::inet AND $2::inet)"""

_BY_KEY = f"SELECT {_COLUMNS} FROM floating_ips WHERE allocation_key = $1"

_COUNT = "SELECT count(*) FROM floating_ips WHERE project_id = $1"

# The lowest free address no concurrent allocation is holding (SKIP LOCKED: a
# second allocator moves on to the next row instead of waiting for the first).
_TAKE = f"""
UPDATE floating_ips SET id = nextval('floating_ip_id_seq'), project_id = $1,
       allocation_key = $4, allocated_at = now()
 WHERE project_id IS NULL
   AND address = (SELECT address FROM floating_ips
                   WHERE pool = $2 AND project_id IS NULL
                     AND address BETWEEN $3::inet AND $5::inet
                   ORDER BY address LIMIT 1
                   FOR UPDATE SKIP LOCKED)
RETURNING {_COLUMNS}"""

_GET_BY_ID = f"SELECT {_COLUMNS} FROM floating_ips WHERE id = $1 AND project_id = $2"

_SERVER_OF_ADDRESS = """
SELECT server_id FROM floating_ips WHERE address = $1::inet AND project_id = $2"""

_LOCK_BY_ADDRESS = f"""
SELECT {_COLUMNS} FROM floating_ips WHERE address = $1::inet AND project_id = $2 FOR UPDATE"""

_RELEASE = """
UPDATE floating_ips SET id = NULL, project_id = NULL, allocation_key = NULL, allocated_at = NULL,
       server_id = NULL, network_id = NULL, fixed_address = NULL, associated_at = NULL
 WHERE address = $1::inet"""

_ASSOCIATE = f"""
UPDATE floating_ips SET server_id = $2, network_id = $3, fixed_address = $4::inet,
       associated_at = now()
 WHERE address = $1::inet
RETURNING {_COLUMNS}"""

_DISASSOCIATE = f"""
UPDATE floating_ips SET server_id = NULL, network_id = NULL, fixed_address = NULL,
       associated_at = NULL
 WHERE address = $1::inet
RETURNING {_COLUMNS}"""

_DISASSOCIATE_SERVER = """
UPDATE floating_ips SET server_id = NULL, network_id = NULL, fixed_address = NULL,
       associated_at = NULL
 WHERE server_id = $1
RETURNING host(address) AS address"""

_OF_SERVER = f"""
SELECT {_COLUMNS} FROM floating_ips WHERE server_id = $1 ORDER BY associated_at, address"""


def pool_range(cidr: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, int]:
    """The first address handed out and how many there are: all but the network
    and broadcast addresses (a /31 or /32 has none to spare and gives all)."""
    if cidr.prefixlen >= 31:
        return cidr.network_address, cidr.num_addresses
    return cidr.network_address + 1, cidr.num_addresses - 2


async def sync_pool(conn: asyncpg.Connection, name: str, cidr: ipaddress.IPv4Network) -> int:
    """Make the pool's addresses exist under ``name``; return how many were added.

    Idempotent and safe to run from several processes at once (an address
    another one inserted meanwhile is skipped).
    """
    first, count = pool_range(cidr)
    added = 0
    for start in range(0, count, _CHUNK):
        status = await conn.execute(_INSERT_POOL, first + start, name, min(_CHUNK, count - start))
        added += int(status.split()[-1])
    last = first + (count - 1)
    await conn.execute(_RENAME_POOL, name, first, last)
    await conn.execute(_DROP_OUTSIDE, first, last)
    if added:
        log.info("network.floating_pool_filled", pool=name, cidr=str(cidr), added=added)
    return added


def _floating(row: asyncpg.Record) -> FloatingIp:
    return FloatingIp(id=row["id"], address=row["address"], pool=row["pool"],
                      project_id=row["project_id"], server_id=row["server_id"],
                      fixed_address=row["fixed_address"])


async def lock_project(conn: asyncpg.Connection, project_id: str) -> None:
    """Serialise the project's floating IP changes until the transaction ends."""
    await conn.execute(_LOCK_PROJECT, _LOCK_CLASS, project_id)


async def by_allocation_key(conn: asyncpg.Connection, key: UUID) -> FloatingIp | None:
    row = await conn.fetchrow(_BY_KEY, key)
    return _floating(row) if row else None


async def count(conn: asyncpg.Connection, project_id: str) -> int:
    return await conn.fetchval(_COUNT, project_id)


async def take(conn: asyncpg.Connection, project_id: str, pool: str,
               cidr: ipaddress.IPv4Network, key: UUID) -> FloatingIp | None:
    """Allocate the pool's lowest free address in ``cidr`` to the project; None if
    none is free."""
    first, count = pool_range(cidr)
    row = await conn.fetchrow(_TAKE, project_id, pool, first, key, first + (count - 1))
    return _floating(row) if row else None


async def get(conn: asyncpg.Connection, project_id: str, floating_ip_id: int) -> FloatingIp | None:
    row = await conn.fetchrow(_GET_BY_ID, floating_ip_id, project_id)
    return _floating(row) if row else None


async def server_of(conn: asyncpg.Connection, project_id: str, address: str) -> UUID | None:
    """The server the project's floating IP ``address`` is on, read without a lock
    (to learn which server's port lock to take before the row's)."""
    return await conn.fetchval(_SERVER_OF_ADDRESS, address, project_id)


async def lock_address(conn: asyncpg.Connection, project_id: str,
                       address: str) -> FloatingIp | None:
    """The project's floating IP ``address``, row-locked; None if it holds no such address."""
    row = await conn.fetchrow(_LOCK_BY_ADDRESS, address, project_id)
    return _floating(row) if row else None


async def release(conn: asyncpg.Connection, address: str) -> None:
    """Back to the pool, free of project and server."""
    await conn.execute(_RELEASE, address)


async def associate(conn: asyncpg.Connection, address: str, server_id: UUID, network_id: UUID,
                    fixed_address: str) -> FloatingIp:
    return _floating(await conn.fetchrow(_ASSOCIATE, address, server_id, network_id,
                                         fixed_address))


async def disassociate(conn: asyncpg.Connection, address: str) -> FloatingIp:
    return _floating(await conn.fetchrow(_DISASSOCIATE, address))


async def disassociate_server(conn: asyncpg.Connection, server_id: UUID) -> list[str]:
    """Take every floating IP off the server (they stay the project's)."""
    return [r["address"] for r in await conn.fetch(_DISASSOCIATE_SERVER, server_id)]


async def of_server(conn: asyncpg.Connection, server_id: UUID) -> list[asyncpg.Record]:
    """The floating IPs on the server, oldest association first (with ``network_id``)."""
    return await conn.fetch(_OF_SERVER, server_id)
