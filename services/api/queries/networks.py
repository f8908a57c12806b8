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
