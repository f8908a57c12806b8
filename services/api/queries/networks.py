"""Reads of the ``networks`` table for the API (the network service writes it):
what create server checks before anything is written."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_OWNED = "SELECT id FROM networks WHERE project_id = $1 AND id = ANY($2::uuid[])"

_COUNT = "SELECT count(*) FROM networks WHERE project_id = $1"

_COLUMNS = "id, project_id, name, cidr::text AS cidr, host(gateway) AS gateway, created_at"

_OF_PROJECT = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 ORDER BY created_at, id"

_GET = f"SELECT {_COLUMNS} FROM networks WHERE project_id = $1 AND id = $2"


async def owned(conn: asyncpg.Connection, project_id: str, ids: list[UUID]) -> set[UUID]:
    """Those of ``ids`` that are the project's networks."""
    return {r["id"] for r in await conn.fetch(_OWNED, project_id, ids)}


async def count(conn: asyncpg.Connection, project_id: str) -> int:
    """How many networks the project has (0 before its first server)."""
    return await conn.fetchval(_COUNT, project_id)


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """The project's networks, oldest (its default) first."""
    return await conn.fetch(_OF_PROJECT, project_id)


async def get(conn: asyncpg.Connection, project_id: str, network_id: UUID) -> asyncpg.Record | None:
    """The project's network ``network_id``; None for anything else."""
    return await conn.fetchrow(_GET, project_id, network_id)
