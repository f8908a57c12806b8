"""Reads of the ``networks`` table for the API (the network service writes it):
what create server checks before anything is written."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_OWNED = "SELECT id FROM networks WHERE project_id = $1 AND id = ANY($2::uuid[])"

_COUNT = "SELECT count(*) FROM networks WHERE project_id = $1"

async def owned(conn: asyncpg.Connection, project_id: str, ids: list[UUID]) -> set[UUID]:
    """Those of ``ids`` that are the project's networks."""
    return {r["id"] for r in await conn.fetch(_OWNED, project_id, ids)}


async def count(conn: asyncpg.Connection, project_id: str) -> int:
    """How many networks the project has (0 before its first server)."""
    return await conn.fetchval(_COUNT, project_id)


# ---- networks and ports as os-networks and the network endpoint show them ----

_COLUMNS = """id, project_id, name, cidr::text AS cidr, host(gateway) AS gateway, is_default,
              created_at"""

_OF_PROJECT = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 ORDER BY created_at, id"

_GET = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 AND id = $2"

# A network's subnets (services/network/growth.py): ordinal 0 is its cidr, a
# default network that grew has more.
_SUBNETS = """
SELECT s.network_id, s.ordinal, s.cidr::text AS cidr, host(s.gateway) AS gateway,
       s.created_at, n.name, n.project_id
  FROM subnets s JOIN networks n ON n.id = s.network_id
 WHERE n.project_id = $1
 ORDER BY n.created_at, n.id, s.ordinal"""

_SUBNET_COUNT = """
SELECT count(*) FROM subnets s JOIN networks n ON n.id = s.network_id WHERE n.project_id = $1"""

# A port is the project's when its server is: the ports table names no project.
# Only live servers' ports: a server deleted while its host was down keeps its
# ports until the host reaps its guest, and is gone for its owner already. The
# server's groups are names (servers.security_groups); the endpoint shows ids.
_PORTS = """
SELECT p.id, p.server_id, p.network_id, host(p.address) AS address, p.mac::text AS mac,
       p.created_at, s.project_id, s.availability_zone,
       (SELECT sn.ordinal FROM subnets sn
         WHERE sn.network_id = p.network_id AND sn.cidr >>= p.address) AS subnet_ordinal,
       ARRAY(SELECT g.id FROM security_groups g
              WHERE g.project_id = s.project_id
                AND g.name IN (SELECT jsonb_array_elements_text(s.security_groups))
              ORDER BY g.id) AS group_ids
  FROM ports p JOIN servers s ON s.id = p.server_id
 WHERE s.project_id = $1 AND s.deleted_at IS NULL
   AND ($2::uuid IS NULL OR p.id = $2)
   AND ($3::uuid IS NULL OR p.server_id = $3)
 ORDER BY p.created_at, p.id"""


async def of_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """The project's networks, oldest first (the default network first)."""
    return await conn.fetch(_OF_PROJECT, project_id)


async def ports(conn: asyncpg.Connection, project_id: str, *, port_id: UUID | None = None,
                server_id: UUID | None = None) -> list[asyncpg.Record]:
    """The ports of the project's live servers, oldest first; only ``port_id``, or only
    ``server_id``'s, when given."""
    return await conn.fetch(_PORTS, project_id, port_id, server_id)


async def get(conn: asyncpg.Connection, project_id: str, network_id: UUID) -> asyncpg.Record | None:
    """The project's network ``network_id``; None for anything else."""
    return await conn.fetchrow(_GET, project_id, network_id)


async def subnets(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """The subnets of the project's networks, network by network (oldest first),
    each network's in the order they were added."""
    return await conn.fetch(_SUBNETS, project_id)


async def subnet_count(conn: asyncpg.Connection, project_id: str) -> int:
    """How many subnets the project's networks have."""
    return await conn.fetchval(_SUBNET_COUNT, project_id)
