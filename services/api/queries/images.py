"""Reads and writes of the ``images`` table: public images and the project's own
snapshots; pages of the list, delete, metadata.

Visible to a project: public images and its own private ones. Changeable
(delete, metadata): only the images the project owns (section 4.4.1.25 and
4.4.1.27-31: "You can only ... images that you are the owner of").
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

import asyncpg
import msgspec

from shared.contracts.common import ImageSpec

_VISIBLE = "(visibility = 'public' OR owner_project_id = $1) AND deleted_at IS NULL"

_LIST = f"SELECT * FROM images WHERE {_VISIBLE} ORDER BY created_at DESC, id DESC"
_GET = f"SELECT * FROM images WHERE id = $2 AND {_VISIBLE}"

# ---- pages of the list (sections 3.6, 3.7, 4.4.1.22-23) ---------------------

# Without changes-since deleted images are never listed; with it, every image
# changed since then is, deleted ones included (shown as DELETED).
_PAGE_WHERE = """
 WHERE (i.visibility = 'public' OR i.owner_project_id = $1)
   AND CASE WHEN $2::timestamptz IS NULL THEN i.deleted_at IS NULL
            ELSE i.updated_at >= $2::timestamptz END
   AND ($3::text IS NULL OR i.name = $3::text)
   AND ($4::text IS NULL
        OR upper(CASE WHEN i.deleted_at IS NULL THEN i.status ELSE 'DELETED' END) = upper($4::text))
   AND ($5::uuid IS NULL OR i.server_id = $5::uuid)"""
_PAGE_ORDER = " ORDER BY i.created_at DESC, i.id DESC LIMIT $6"
_PAGE_FIRST = f"SELECT i.* FROM images i {_PAGE_WHERE} {_PAGE_ORDER}"
_PAGE_AFTER = (f"SELECT i.* FROM images i {_PAGE_WHERE}"
               f" AND (i.created_at, i.id) < ($7::timestamptz, $8::uuid) {_PAGE_ORDER}")
_MARKER = """SELECT created_at, id FROM images
 WHERE id = $2 AND (visibility = 'public' OR owner_project_id = $1)"""

# ---- delete and metadata (sections 4.4.1.25-31) -----------------------------

_OWNED = "id = $1 AND owner_project_id = $2 AND deleted_at IS NULL"

_DELETE = f"""
UPDATE images SET status = 'DELETED', deleted_at = now(), updated_at = now()
 WHERE {_OWNED}
RETURNING id, location"""

_OWNED_EXISTS = f"SELECT EXISTS (SELECT 1 FROM images WHERE {_OWNED})"

# As for servers: the count is checked on the merged value in the same
# statement, which PostgreSQL re-checks against a concurrent change.
_MERGE_METADATA = f"""
UPDATE images SET metadata = metadata || $3::jsonb, updated_at = now()
 WHERE {_OWNED}
   AND ($4::int < 0 OR (SELECT count(*) FROM jsonb_object_keys(metadata || $3::jsonb)) <= $4::int)
RETURNING metadata"""

_REPLACE_METADATA = f"""
UPDATE images SET metadata = $3::jsonb, updated_at = now() WHERE {_OWNED} RETURNING metadata"""

_DELETE_METADATA_KEY = f"""
UPDATE images SET metadata = metadata - $3::text, updated_at = now()
 WHERE {_OWNED} AND metadata ? $3::text
RETURNING id"""


# ---- the image endpoint (services/api/glance) ---------------------------------

# Glance's filters over what the project sees; the endpoint sorts and pages.
_GLANCE_LIST = f"""
SELECT * FROM images
 WHERE {_VISIBLE}
   AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
   AND ($3::text[] IS NULL OR name = ANY($3::text[]))
   AND ($4::text[] IS NULL OR status = ANY($4::text[]))
   AND ($5::text[] IS NULL OR disk_format = ANY($5::text[]))
   AND ($6::text IS NULL OR visibility = $6::text)
   AND ($7::text IS NULL OR owner_project_id = $7::text)
   AND ($8::bigint IS NULL OR size_bytes >= $8::bigint)
   AND ($9::bigint IS NULL OR size_bytes <= $9::bigint)
   AND metadata @> $10::jsonb"""

# A snapshot that failed is ERROR and deleted (``shared.db.images.fail_snapshot``);
# the image endpoint still shows it, by id, so that waiters see ``error``.
_GET_SHOWN = """SELECT * FROM images
 WHERE id = $2 AND (visibility = 'public' OR owner_project_id = $1)
   AND (deleted_at IS NULL OR status = 'ERROR')"""

# Deleting a failed snapshot (already deleted) only makes it DELETED: gone for good.
_FORGET_FAILED = """
UPDATE images SET status = 'DELETED'
 WHERE id = $1 AND owner_project_id = $2 AND status = 'ERROR' AND deleted_at IS NOT NULL
RETURNING id"""

_LOCK_OWNED = f"SELECT * FROM images WHERE {_OWNED} FOR UPDATE"

_UPDATE_NAME_AND_METADATA = f"""
UPDATE images SET name = $3, metadata = $4::jsonb, updated_at = now() WHERE {_OWNED}
RETURNING *"""


class ImageFilters(msgspec.Struct, frozen=True, kw_only=True):
    """What an image list may be narrowed by; None is no filter."""

    changes_since: datetime | None = None
    name: str | None = None
    status: str | None = None
    server_id: UUID | None = None


async def list_visible(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id)


async def get_visible(conn: asyncpg.Connection, project_id: str, image_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, project_id, image_id)


async def marker_position(conn: asyncpg.Connection, project_id: str,
                          image_id: UUID) -> tuple[datetime, UUID] | None:
    """Where the marker image sorts, or None if the project cannot see it."""
    row = await conn.fetchrow(_MARKER, project_id, image_id)
    return (row["created_at"], row["id"]) if row else None


async def list_page(conn: asyncpg.Connection, project_id: str, filters: ImageFilters,
                    limit: int, after: tuple[datetime, UUID] | None) -> list[asyncpg.Record]:
    """One page of the images the project sees, newest first, after the marker position."""
    args = [project_id, filters.changes_since, filters.name, filters.status,
            filters.server_id, limit]
    if after is None:
        return await conn.fetch(_PAGE_FIRST, *args)
    return await conn.fetch(_PAGE_AFTER, *args, *after)


class Deleted(NamedTuple):
    location: str | None
    """The file the image had in the store (None: never written, still SAVING)."""


async def delete_owned(conn: asyncpg.Connection, project_id: str,
                       image_id: UUID) -> Deleted | None:
    """Mark the project's own image deleted; None if it owns no such live image."""
    row = await conn.fetchrow(_DELETE, image_id, project_id)
    return None if row is None else Deleted(row["location"])


async def is_owned(conn: asyncpg.Connection, project_id: str, image_id: UUID) -> bool:
    return await conn.fetchval(_OWNED_EXISTS, image_id, project_id)


async def merge_metadata(conn: asyncpg.Connection, project_id: str, image_id: UUID,
                         items: dict[str, str], allowed: int) -> dict[str, str] | None:
    """Add or overwrite ``items`` if at most ``allowed`` (-1: any) result; the new metadata."""
    row = await conn.fetchrow(_MERGE_METADATA, image_id, project_id, items, allowed)
    return None if row is None else dict(row["metadata"])


async def replace_metadata(conn: asyncpg.Connection, project_id: str, image_id: UUID,
                           items: dict[str, str]) -> dict[str, str] | None:
    row = await conn.fetchrow(_REPLACE_METADATA, image_id, project_id, items)
    return None if row is None else dict(row["metadata"])


async def delete_metadata_key(conn: asyncpg.Connection, project_id: str, image_id: UUID,
                              key: str) -> bool:
    return await conn.fetchval(_DELETE_METADATA_KEY, image_id, project_id, key) is not None


def image_spec(row: asyncpg.Record) -> ImageSpec:
    """What an agent is told of an image (create, rebuild, rescue): the one place
    a row becomes an ``ImageSpec``, its file and format included."""
    return ImageSpec(id=row["id"], name=row["name"], min_disk_gb=row["min_disk_gb"],
                     min_ram_mb=row["min_ram_mb"], size_bytes=row["size_bytes"],
                     location=row["location"], disk_format=row["disk_format"])


async def glance_list(conn: asyncpg.Connection, project_id: str, *, ids: list[UUID] | None,
                      names: list[str] | None, statuses: list[str] | None,
                      disk_formats: list[str] | None, visibility: str | None,
                      owner: str | None, size_min: int | None, size_max: int | None,
                      properties: dict[str, str]) -> list[asyncpg.Record]:
    """The live images the project sees, narrowed by the image endpoint's filters
    (None: no filter; ``properties``: metadata items that must all be there)."""
    return await conn.fetch(_GLANCE_LIST, project_id, ids, names, statuses, disk_formats,
                            visibility, owner, size_min, size_max, properties)


async def get_shown(conn: asyncpg.Connection, project_id: str,
                    image_id: UUID) -> asyncpg.Record | None:
    """``get_visible``, and the project's failed snapshots (ERROR, deleted)."""
    return await conn.fetchrow(_GET_SHOWN, project_id, image_id)


async def forget_failed(conn: asyncpg.Connection, project_id: str, image_id: UUID) -> bool:
    """A failed snapshot of the project's becomes DELETED; False if there is none."""
    return await conn.fetchval(_FORGET_FAILED, image_id, project_id) is not None


async def lock_owned(conn: asyncpg.Connection, project_id: str,
                     image_id: UUID) -> asyncpg.Record | None:
    """The project's own live image, locked until the transaction ends."""
    return await conn.fetchrow(_LOCK_OWNED, image_id, project_id)


async def update_name_and_metadata(conn: asyncpg.Connection, project_id: str, image_id: UUID,
                                   name: str, metadata: dict[str, str]) -> asyncpg.Record | None:
    return await conn.fetchrow(_UPDATE_NAME_AND_METADATA, image_id, project_id, name, metadata)
