"""Reads and the create of the ``servers`` table for the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

_COLUMNS = """s.*, (SELECT row(f.code, f.message, f.details, f.created_at)
                      FROM server_faults f WHERE f.server_id = s.id
                     ORDER BY f.created_at DESC, f.id DESC LIMIT 1) AS fault"""

_LIST = f"""
SELECT {_COLUMNS} FROM servers s
 WHERE s.project_id = $1 AND s.deleted_at IS NULL
 ORDER BY s.created_at DESC, s.id DESC"""

_GET = f"SELECT {_COLUMNS} FROM servers s WHERE s.id = $1 AND s.project_id = $2 AND s.deleted_at IS NULL"

_INSERT = """
INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor, vm_state,
                     task_state, availability_zone, metadata, security_groups, key_name,
                     config_drive, reservation_id, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'building', 'scheduling', $8, $9, $10, $11, $12, $13, $14)
RETURNING *"""

_ZONE_KNOWN = "SELECT EXISTS (SELECT 1 FROM compute_hosts WHERE availability_zone = $1)"

_GROUPS_KNOWN = "SELECT name FROM security_groups WHERE project_id = $1 AND name = ANY($2::text[])"


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id)


async def get(conn: asyncpg.Connection, project_id: str, server_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, server_id, project_id)


async def insert(conn: asyncpg.Connection, **v: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        _INSERT, v["id"], v["project_id"], v["user_id"], v["name"], v["image_id"], v["flavor_id"],
        v["flavor"], v["availability_zone"], v["metadata"], v["security_groups"], v["key_name"],
        v["config_drive"], v["reservation_id"], v["request_id"])


async def zone_known(conn: asyncpg.Connection, zone: str) -> bool:
    return await conn.fetchval(_ZONE_KNOWN, zone)


async def known_groups(conn: asyncpg.Connection, project_id: str, names: list[str]) -> set[str]:
    return {r["name"] for r in await conn.fetch(_GROUPS_KNOWN, project_id, names)}
