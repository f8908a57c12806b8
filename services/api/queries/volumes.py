"""The API's reads and inserts of volumes, snapshots and volume types.

Status changes are not here: they are the guarded updates of
``shared.db.volumes``, shared with the volume service and the agents.

A project sees its own live volumes and snapshots only; another project's
look like no volume at all. Lists page keyset style, newest first (section 3.6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_VOLUME = """
SELECT v.*, t.name AS volume_type_name
  FROM volumes v LEFT JOIN volume_types t ON t.id = v.volume_type_id"""

_LIVE = "v.project_id = $1 AND v.deleted_at IS NULL"

_GET = f"{_VOLUME} WHERE {_LIVE} AND v.id = $2"

# The volume a snapshot is taken of, held until the snapshot's row is written:
# a delete or attach of it (guarded updates of the row) waits, then sees the
# snapshot (delete refuses a volume with snapshots).
_LOCK_FOR_SNAPSHOT = f"{_VOLUME} WHERE {_LIVE} AND v.id = $2 FOR SHARE OF v"

_PAGE_FIRST = f"{_VOLUME} WHERE {_LIVE} ORDER BY v.created_at DESC, v.id DESC LIMIT $2"
_PAGE_AFTER = (f"{_VOLUME} WHERE {_LIVE} AND (v.created_at, v.id) < ($3::timestamptz, $4::uuid)"
               " ORDER BY v.created_at DESC, v.id DESC LIMIT $2")
_MARKER = f"SELECT created_at, id FROM volumes v WHERE {_LIVE} AND v.id = $2"

_INSERT = """
INSERT INTO volumes (id, project_id, user_id, status, size_gb, display_name, display_description,
                     volume_type_id, availability_zone, snapshot_id, image_id, metadata,
                     status_request_id)
VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING *"""

# The block-storage endpoint's filtered lists: $1 NULL is every project's (an
# admin's all_tenants); a NULL filter matches all. Newest first; the endpoint
# orders again when asked for another sort.
_FILTERED = f"""{_VOLUME}
 WHERE ($1::text IS NULL OR v.project_id = $1) AND v.deleted_at IS NULL
   AND ($2::text IS NULL OR v.display_name = $2) AND ($3::text IS NULL OR v.status = $3)
   AND v.metadata @> $4::jsonb
 ORDER BY v.created_at DESC, v.id DESC"""

# A rename, a new description, new metadata (replacing the old, as Cinder's
# update did); a false flag leaves its field as it is.
_UPDATE = """
UPDATE volumes SET display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
       display_description = CASE WHEN $5 THEN $6 ELSE display_description END,
       metadata = coalesce($7::jsonb, metadata), updated_at = now()
 WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING id"""

# Volume metadata (the block-storage endpoint's /volumes/{id}/metadata): single
# guarded statements, as servers' (``services.api.resources.metadata``).
_META_LIVE = "project_id = $1 AND id = $2 AND deleted_at IS NULL"
_MERGE_META = f"""
UPDATE volumes SET metadata = metadata || $3::jsonb, updated_at = now()
 WHERE {_META_LIVE}
   AND ($4::int < 0 OR (SELECT count(*) FROM jsonb_object_keys(metadata || $3::jsonb)) <= $4::int)
RETURNING metadata"""
_REPLACE_META = f"""
UPDATE volumes SET metadata = $3::jsonb, updated_at = now() WHERE {_META_LIVE}
RETURNING metadata"""
_DELETE_META_KEY = f"""
UPDATE volumes SET metadata = metadata - $3::text, updated_at = now()
 WHERE {_META_LIVE} AND metadata ? $3::text
RETURNING id"""

# ---- snapshots ----------------------------------------------------------------

_SNAPSHOT_LIVE = "s.project_id = $1 AND s.deleted_at IS NULL"

_GET_SNAPSHOT = f"SELECT s.* FROM volume_snapshots s WHERE {_SNAPSHOT_LIVE} AND s.id = $2"

# The snapshot a volume is made from, held until the volume's row is written: a
# delete of the snapshot (a guarded update of this row) waits, then sees the
# volume being made from it and refuses.
_LOCK_SNAPSHOT = (f"SELECT s.*, v.availability_zone AS volume_availability_zone"
                  f"  FROM volume_snapshots s JOIN volumes v ON v.id = s.volume_id"
                  f" WHERE {_SNAPSHOT_LIVE} AND s.id = $2 FOR SHARE OF s")

_SNAPSHOT_PAGE_FIRST = (f"SELECT s.* FROM volume_snapshots s WHERE {_SNAPSHOT_LIVE}"
                        " ORDER BY s.created_at DESC, s.id DESC LIMIT $2")
_SNAPSHOT_PAGE_AFTER = (f"SELECT s.* FROM volume_snapshots s WHERE {_SNAPSHOT_LIVE}"
                        " AND (s.created_at, s.id) < ($3::timestamptz, $4::uuid)"
                        " ORDER BY s.created_at DESC, s.id DESC LIMIT $2")
_SNAPSHOT_MARKER = (f"SELECT created_at, id FROM volume_snapshots s"
                    f" WHERE {_SNAPSHOT_LIVE} AND s.id = $2")

_INSERT_SNAPSHOT = """
INSERT INTO volume_snapshots (id, project_id, user_id, volume_id, status, size_gb, display_name,
                              display_description, status_request_id)
VALUES ($1, $2, $3, $4, 'creating', $5, $6, $7, $8)
RETURNING *"""

_SNAPSHOTS_FILTERED = """
SELECT s.* FROM volume_snapshots s
 WHERE ($1::text IS NULL OR s.project_id = $1) AND s.deleted_at IS NULL
   AND ($2::text IS NULL OR s.display_name = $2) AND ($3::text IS NULL OR s.status = $3)
   AND ($4::uuid IS NULL OR s.volume_id = $4)
 ORDER BY s.created_at DESC, s.id DESC"""

_UPDATE_SNAPSHOT = """
UPDATE volume_snapshots SET display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
       display_description = CASE WHEN $5 THEN $6 ELSE display_description END,
       updated_at = now()
 WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING *"""

_VOLUMES_BEING_MADE_FROM = """
SELECT count(*) FROM volumes
 WHERE snapshot_id = $1 AND status = 'creating' AND deleted_at IS NULL"""

# ---- types --------------------------------------------------------------------

_TYPES = "SELECT * FROM volume_types ORDER BY name, id"
_TYPE_BY_ID = "SELECT * FROM volume_types WHERE id = $1"
_TYPE_BY_NAME = "SELECT * FROM volume_types WHERE name = $1"


async def get(conn: asyncpg.Connection, project_id: str, volume_id: UUID) -> asyncpg.Record | None:
    """The project's live volume, with ``volume_type_name``."""
    return await conn.fetchrow(_GET, project_id, volume_id)


async def lock_for_snapshot(conn: asyncpg.Connection, project_id: str,
                            volume_id: UUID) -> asyncpg.Record | None:
    """:func:`get`, the row share-locked until the caller's transaction ends."""
    return await conn.fetchrow(_LOCK_FOR_SNAPSHOT, project_id, volume_id)


async def marker_position(conn: asyncpg.Connection, project_id: str,
                          volume_id: UUID) -> tuple[datetime, UUID] | None:
    row = await conn.fetchrow(_MARKER, project_id, volume_id)
    return (row["created_at"], row["id"]) if row else None


async def list_page(conn: asyncpg.Connection, project_id: str, limit: int,
                    after: tuple[datetime, UUID] | None) -> list[asyncpg.Record]:
    """One page of the project's live volumes, newest first, after the marker's."""
    if after is None:
        return await conn.fetch(_PAGE_FIRST, project_id, limit)
    return await conn.fetch(_PAGE_AFTER, project_id, limit, *after)


async def insert(conn: asyncpg.Connection, *, id: UUID, project_id: str, user_id: str,
                 size_gb: int, display_name: str | None, display_description: str | None,
                 volume_type_id: UUID | None, availability_zone: str, snapshot_id: UUID | None,
                 image_id: UUID | None, metadata: dict[str, str],
                 request_id: str | None) -> asyncpg.Record:
    """A new volume in ``creating`` (the create's own transient status)."""
    return await conn.fetchrow(_INSERT, id, project_id, user_id, size_gb, display_name,
                               display_description, volume_type_id, availability_zone,
                               snapshot_id, image_id, metadata, request_id)


async def filtered(conn: asyncpg.Connection, project_id: str | None, *, name: str | None,
                   status: str | None, metadata: dict[str, str]) -> list[asyncpg.Record]:
    """The live volumes of ``project_id`` (None: of every project) that match,
    newest first."""
    return list(await conn.fetch(_FILTERED, project_id, name, status, metadata))


Unset = object()
"""A field an update leaves as it is."""


async def update(conn: asyncpg.Connection, project_id: str, volume_id: UUID, *,
                 display_name: Any = Unset, display_description: Any = Unset,
                 metadata: dict[str, str] | None = None) -> asyncpg.Record | None:
    """Change what is given of the project's live volume; the row as :func:`get`
    reads it, None when there is no such volume."""
    done = await conn.fetchval(
        _UPDATE, project_id, volume_id, display_name is not Unset,
        None if display_name is Unset else display_name, display_description is not Unset,
        None if display_description is Unset else display_description, metadata)
    return None if done is None else await get(conn, project_id, volume_id)


async def merge_metadata(conn: asyncpg.Connection, project_id: str, volume_id: UUID,
                         items: dict[str, str], allowed: int) -> dict[str, str] | None:
    """Add or overwrite ``items`` if at most ``allowed`` (-1: any) result; the new
    metadata, None if no such volume or too many items."""
    row = await conn.fetchrow(_MERGE_META, project_id, volume_id, items, allowed)
    return None if row is None else dict(row["metadata"])


async def replace_metadata(conn: asyncpg.Connection, project_id: str, volume_id: UUID,
                           items: dict[str, str]) -> dict[str, str] | None:
    row = await conn.fetchrow(_REPLACE_META, project_id, volume_id, items)
    return None if row is None else dict(row["metadata"])


async def delete_metadata_key(conn: asyncpg.Connection, project_id: str, volume_id: UUID,
                              key: str) -> bool:
    return await conn.fetchval(_DELETE_META_KEY, project_id, volume_id, key) is not None


async def get_snapshot(conn: asyncpg.Connection, project_id: str,
                       snapshot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET_SNAPSHOT, project_id, snapshot_id)


async def lock_snapshot(conn: asyncpg.Connection, project_id: str,
                        snapshot_id: UUID) -> asyncpg.Record | None:
    """The project's live snapshot with its volume's ``volume_availability_zone``,
    share-locked until the caller's transaction ends."""
    return await conn.fetchrow(_LOCK_SNAPSHOT, project_id, snapshot_id)


async def snapshot_marker_position(conn: asyncpg.Connection, project_id: str,
                                   snapshot_id: UUID) -> tuple[datetime, UUID] | None:
    row = await conn.fetchrow(_SNAPSHOT_MARKER, project_id, snapshot_id)
    return (row["created_at"], row["id"]) if row else None


async def snapshot_page(conn: asyncpg.Connection, project_id: str, limit: int,
                        after: tuple[datetime, UUID] | None) -> list[asyncpg.Record]:
    if after is None:
        return await conn.fetch(_SNAPSHOT_PAGE_FIRST, project_id, limit)
    return await conn.fetch(_SNAPSHOT_PAGE_AFTER, project_id, limit, *after)


async def insert_snapshot(conn: asyncpg.Connection, *, id: UUID, project_id: str, user_id: str,
                          volume_id: UUID, size_gb: int, display_name: str | None,
                          display_description: str | None,
                          request_id: str | None) -> asyncpg.Record:
    """A new snapshot in ``creating``."""
    return await conn.fetchrow(_INSERT_SNAPSHOT, id, project_id, user_id, volume_id, size_gb,
                               display_name, display_description, request_id)


async def filtered_snapshots(conn: asyncpg.Connection, project_id: str | None, *,
                             name: str | None, status: str | None,
                             volume_id: UUID | None) -> list[asyncpg.Record]:
    """As :func:`filtered`, for snapshots."""
    return list(await conn.fetch(_SNAPSHOTS_FILTERED, project_id, name, status, volume_id))


async def update_snapshot(conn: asyncpg.Connection, project_id: str, snapshot_id: UUID, *,
                          display_name: Any = Unset,
                          display_description: Any = Unset) -> asyncpg.Record | None:
    return await conn.fetchrow(
        _UPDATE_SNAPSHOT, project_id, snapshot_id, display_name is not Unset,
        None if display_name is Unset else display_name, display_description is not Unset,
        None if display_description is Unset else display_description)


async def volumes_being_made_from(conn: asyncpg.Connection, snapshot_id: UUID) -> int:
    """Volumes still ``creating`` from the snapshot (they read its bits)."""
    return int(await conn.fetchval(_VOLUMES_BEING_MADE_FROM, snapshot_id))


async def volume_types(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(_TYPES)


async def volume_type(conn: asyncpg.Connection, type_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_TYPE_BY_ID, type_id)


async def find_volume_type(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """The type ``ref`` names: by id when it is a UUID, else (or if no id matches)
    by name. Cinder looked a UUID up by id only; a type whose name looks like a
    UUID is found here too."""
    row: Any = None
    try:
        row = await conn.fetchrow(_TYPE_BY_ID, UUID(ref))
    except ValueError:
        pass
    return row if row is not None else await conn.fetchrow(_TYPE_BY_NAME, ref)
