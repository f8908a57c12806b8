"""Reads of the ``floating_ips`` table for the API (the network service writes it,
over the ``network.floating`` queue): list, get and the count /limits shows."""

from __future__ import annotations

import asyncpg

_COLUMNS = """id, host(address) AS address, pool, project_id, server_id,
              host(fixed_address) AS fixed_address"""

_LIST = f"SELECT {_COLUMNS} FROM floating_ips WHERE project_id = $1 ORDER BY id"

_GET = f"SELECT {_COLUMNS} FROM floating_ips WHERE id = $1 AND project_id = $2"

_USED = "SELECT count(*) FROM floating_ips WHERE project_id = $1"


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id)


async def get(conn: asyncpg.Connection, project_id: str,
              floating_ip_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, floating_ip_id, project_id)


async def used(conn: asyncpg.Connection, project_id: str) -> int:
    """How many floating IPs the project holds (os-used-limits totalFloatingIpsUsed)."""
    return await conn.fetchval(_USED, project_id)


# The network endpoint shows a floating IP on a port: the port of its server
# that holds its fixed address.
_WITH_PORT = """
SELECT f.id, host(f.address) AS address, f.pool, f.project_id, f.server_id,
       host(f.fixed_address) AS fixed_address, f.allocated_at, f.associated_at,
       p.id AS port_id
  FROM floating_ips f
  LEFT JOIN ports p ON p.server_id = f.server_id AND p.address = f.fixed_address
 WHERE f.project_id = $1 AND ($2::bigint IS NULL OR f.id = $2)
 ORDER BY f.id"""


async def with_ports(conn: asyncpg.Connection, project_id: str,
                     floating_ip_id: int | None = None) -> list[asyncpg.Record]:
    """The project's floating IPs (or the one ``floating_ip_id``) with the port each
    is on (``port_id``, None when not associated) and when it was allocated."""
    return await conn.fetch(_WITH_PORT, project_id, floating_ip_id)
