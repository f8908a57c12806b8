"""Reads of the ``flavors`` table."""

from __future__ import annotations

import asyncpg

_LIST = "SELECT * FROM flavors WHERE is_public ORDER BY id"
_GET = "SELECT * FROM flavors WHERE id = $1 AND is_public"


async def list_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST)


async def get(conn: asyncpg.Connection, flavor_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, flavor_id)
