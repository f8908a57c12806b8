"""SQL for the ``images`` rows of snapshots, which the API and the compute agents both
write: the API creates the image SAVING, the agent that owns the server ends it
ACTIVE (with its size) or, when the snapshot fails, ERROR and deleted.

The API's reads of images (lists, metadata) are in ``services/api/queries/images.py``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.image_store import ImageFile

_GET_ANY = "SELECT * FROM images WHERE id = $1"

_INSERT_SNAPSHOT = """
INSERT INTO images (id, name, status, visibility, owner_project_id, server_id, min_disk_gb,
                    min_ram_mb, size_bytes, progress, metadata, created_at, updated_at)
VALUES ($1, $2, 'SAVING', 'private', $3, $4, $5, $6, 0, 0, $7, now(), now())
RETURNING *"""

# Guarded: a snapshot the user deleted meanwhile stays deleted.
_FINISH_SNAPSHOT = """
UPDATE images SET status = 'ACTIVE', progress = 100, size_bytes = $2, location = $3,
       disk_format = $4, updated_at = now(),
       metadata = CASE WHEN metadata ? 'image_state'
                       THEN metadata || '{"image_state": "available"}'::jsonb
                       ELSE metadata END
 WHERE id = $1 AND status = 'SAVING' AND deleted_at IS NULL
RETURNING id"""

_FAIL_SAVING_OF_SERVER = """
UPDATE images SET status = 'ERROR', deleted_at = coalesce(deleted_at, now()), updated_at = now()
 WHERE server_id = $1 AND status = 'SAVING'
RETURNING id"""

_FAIL_SNAPSHOT = """
UPDATE images SET status = 'ERROR', deleted_at = coalesce(deleted_at, now()), updated_at = now()
 WHERE id = $1 AND status = 'SAVING'
RETURNING id"""


async def get_any(conn: asyncpg.Connection, image_id: UUID) -> asyncpg.Record | None:
    """The image row, whoever owns it and even if deleted."""
    return await conn.fetchrow(_GET_ANY, image_id)


async def insert_snapshot(conn: asyncpg.Connection, *, image_id: UUID, name: str,
                          project_id: str, server_id: UUID, min_disk_gb: int, min_ram_mb: int,
                          metadata: dict[str, Any]) -> asyncpg.Record:
    """A private image of ``project_id`` in SAVING (progress 0, size 0) for ``server_id``."""
    return await conn.fetchrow(_INSERT_SNAPSHOT, image_id, name, project_id, server_id,
                               min_disk_gb, min_ram_mb, metadata)


async def finish_snapshot(conn: asyncpg.Connection, image_id: UUID, file: ImageFile) -> bool:
    """SAVING -> ACTIVE with its file (location, format, size); False if the image
    is no longer SAVING (deleted meanwhile: the caller removes the file)."""
    return await conn.fetchval(_FINISH_SNAPSHOT, image_id, file.size_bytes, file.location,
                               file.disk_format) is not None


async def fail_snapshot(conn: asyncpg.Connection, image_id: UUID) -> bool:
    """SAVING -> ERROR, and gone from lists (deleted, as Nova deletes a failed
    snapshot's image); False if it was not SAVING."""
    return await conn.fetchval(_FAIL_SNAPSHOT, image_id) is not None


async def fail_saving_of_server(conn: asyncpg.Connection, server_id: UUID) -> int:
    """Fail every SAVING snapshot of ``server_id`` (its snapshot task was given up,
    e.g. by a sweep); how many."""
    return len(await conn.fetch(_FAIL_SAVING_OF_SERVER, server_id))
