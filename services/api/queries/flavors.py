"""Reads of the ``flavors`` table: one flavor, and pages of the public ones."""

from __future__ import annotations

import asyncpg

_LIST = "SELECT * FROM flavors WHERE is_public ORDER BY id"
_GET = "SELECT * FROM flavors WHERE id = $1 AND is_public"

# Flavors page by id, ascending (see resources/flavors.py), keyset style.
_PAGE_WHERE = "WHERE is_public AND ram_mb >= $1 AND disk_gb >= $2"
_PAGE_FIRST = f"SELECT * FROM flavors {_PAGE_WHERE} ORDER BY id LIMIT $3"
_PAGE_AFTER = f"SELECT * FROM flavors {_PAGE_WHERE} AND id > $4 ORDER BY id LIMIT $3"


async def list_all(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST)


async def get(conn: asyncpg.Connection, flavor_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, flavor_id)


async def list_page(conn: asyncpg.Connection, *, min_ram_mb: int, min_disk_gb: int,
                    limit: int, after: str | None) -> list[asyncpg.Record]:
    """Public flavors with at least this RAM and disk, by id, after the marker id."""
    if after is None:
        return await conn.fetch(_PAGE_FIRST, min_ram_mb, min_disk_gb, limit)
    return await conn.fetch(_PAGE_AFTER, min_ram_mb, min_disk_gb, limit, after)
