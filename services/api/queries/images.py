"""Reads of the ``images`` table: public images and the project's own snapshots."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_VISIBLE = "(visibility = 'public' OR owner_project_id = $1) AND deleted_at IS NULL"

_LIST = f"SELECT * FROM images WHERE {_VISIBLE} ORDER BY created_at DESC, id DESC"
_GET = f"SELECT * FROM images WHERE id = $2 AND {_VISIBLE}"


async def list_visible(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id)


async def get_visible(conn: asyncpg.Connection, project_id: str, image_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, project_id, image_id)
