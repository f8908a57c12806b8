"""SQL for the ``keypairs`` table: a user's keypairs in one project.

A keypair is its project's and user's (Nova kept them per user): every query
takes both, so another project's or another user's keypair is never seen.
"""

from __future__ import annotations

import asyncpg

# pg_advisory_xact_lock(int4, int4): a class id of its own, apart from the
# server quota lock (services.api.queries.quotas) and any other advisory lock.
_KEYPAIR_LOCK_CLASS = 0x6B657970  # "keyp"

_LOCK = "SELECT pg_advisory_xact_lock($1::int4, hashtext($2 || '/' || $3))"

_COLUMNS = "project_id, user_id, name, fingerprint, public_key, created_at"

_LIST = f"SELECT {_COLUMNS} FROM keypairs WHERE project_id = $1 AND user_id = $2 ORDER BY name"

_GET = f"SELECT {_COLUMNS} FROM keypairs WHERE project_id = $1 AND user_id = $2 AND name = $3"

_COUNT = "SELECT count(*) FROM keypairs WHERE project_id = $1 AND user_id = $2"

_INSERT = f"""
INSERT INTO keypairs (project_id, user_id, name, fingerprint, public_key)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (project_id, user_id, name) DO NOTHING
RETURNING {_COLUMNS}"""

_DELETE = "DELETE FROM keypairs WHERE project_id = $1 AND user_id = $2 AND name = $3 RETURNING id"


async def lock_owner(conn: asyncpg.Connection, project_id: str, user_id: str) -> None:
    """Serialise keypair creates of one user in one project until the transaction ends."""
    await conn.execute(_LOCK, _KEYPAIR_LOCK_CLASS, project_id, user_id)


async def list_for_owner(conn: asyncpg.Connection, project_id: str,
                         user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id, user_id)


async def get(conn: asyncpg.Connection, project_id: str, user_id: str,
              name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, project_id, user_id, name)


async def count(conn: asyncpg.Connection, project_id: str, user_id: str) -> int:
    return await conn.fetchval(_COUNT, project_id, user_id)


async def insert(conn: asyncpg.Connection, project_id: str, user_id: str, name: str, *,
                 fingerprint: str, public_key: str) -> asyncpg.Record | None:
    """The new keypair, or None if the user has one of that name in the project."""
    return await conn.fetchrow(_INSERT, project_id, user_id, name, fingerprint, public_key)


async def delete(conn: asyncpg.Connection, project_id: str, user_id: str, name: str) -> bool:
    return await conn.fetchval(_DELETE, project_id, user_id, name) is not None
