"""Reads and writes of the ``servers`` table for the API: create, pages of the
list (keyset pagination, filters, changes-since), name update, metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

# The latest fault is read for a server in ERROR only, the one state whose views
# show it; volumes through ARRAY(...) rather than array_agg. Both per server of a
# page: an Aggregate node, or a Sort node even over no rows, costs PostgreSQL
# some 5-10 µs a server each time it starts, 10 ms of a 1,000-server page.
_EXTRAS = """CASE WHEN s.vm_state = 'error' THEN
                  (SELECT row(f.code, f.message, f.details, f.created_at)
                     FROM server_faults f WHERE f.server_id = s.id
                    ORDER BY f.created_at DESC, f.id DESC LIMIT 1) END AS fault,
                ARRAY(SELECT v.id FROM volumes v WHERE v.server_id = s.id AND v.deleted_at IS NULL
                       ORDER BY v.device) AS volumes_attached"""
_COLUMNS = f"s.*, {_EXTRAS}"

_LIST = f"""
SELECT {_COLUMNS} FROM servers s
 WHERE s.project_id = $1 AND s.deleted_at IS NULL
 ORDER BY s.created_at DESC, s.id DESC"""

_GET = f"SELECT {_COLUMNS} FROM servers s WHERE s.id = $1 AND s.project_id = $2 AND s.deleted_at IS NULL"

_INSERT = """
INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor, vm_state,
                     task_state, availability_zone, metadata, security_groups, key_name,
                     config_drive, reservation_id, request_id, task_request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'building', 'scheduling', $8, $9, $10, $11, $12, $13, $14,
        $14)
RETURNING *"""

_ZONE_KNOWN = "SELECT EXISTS (SELECT 1 FROM compute_hosts WHERE availability_zone = $1)"
_FIRST_ZONE = "SELECT min(availability_zone) FROM compute_hosts"

_GROUPS_KNOWN = "SELECT name FROM security_groups WHERE project_id = $1 AND name = ANY($2::text[])"


# ---- pages of the list (sections 3.6, 3.7, 4.4.1.5, 4.4.1.7) ---------------

# Without changes-since a deleted server is never listed; with it, every server
# changed since then is, deleted ones included (shown as DELETED).
#
# A statement for each of with or without changes-since, from the start or after
# a marker (and brief or detail), rather than one with "$2 IS NULL OR ..."
# branches: asyncpg prepares each statement and after five runs PostgreSQL may
# settle on a generic plan,
# which cannot drop a branch. A poll with changes-since then walked all the
# project's servers (50 ms at 100,000 servers, finding none); on its own it walks
# servers_project_updated_idx (migration 0016) from that time on. One after a
# marker walks servers_project_created_idx from the marker on. All take the same
# parameters; the ones without changes-since check that $2 is NULL once.
_LIVE = """
 WHERE s.project_id = $1 AND s.deleted_at IS NULL AND $2::timestamptz IS NULL"""
_CHANGED = """
 WHERE s.project_id = $1 AND s.updated_at >= $2::timestamptz"""
_FILTERS = """
   AND ($3::text IS NULL OR s.name ~ $3::text)
   AND ($4::text[] IS NULL OR s.vm_state || '/' || coalesce(s.task_state, '') = ANY($4::text[]))
   AND ($5::uuid IS NULL OR s.image_id = $5::uuid)
   AND ($6::text IS NULL OR s.flavor_id = $6::text)"""
# A page reads what its view shows: brief lists the id and name; detail leaves out
# the columns no view reads (flavor, a JSON document, and the request ids and
# times), whose decoding cost the API more than their query did.
_BRIEF = "s.id, s.name"
_DETAIL = ("s.id, s.project_id, s.user_id, s.name, s.image_id, s.flavor_id, s.vm_state,"
           " s.task_state, s.power_state, s.host, s.availability_zone, s.metadata,"
           " s.security_groups, s.addresses, s.key_name, s.config_drive, s.access_ipv4,"
           " s.access_ipv6, s.progress, s.created_at, s.updated_at, " + _EXTRAS)
_AFTER = " AND (s.created_at, s.id) < ($8::timestamptz, $9::uuid)"
_PAGE_ORDER = " ORDER BY s.created_at DESC, s.id DESC LIMIT $7"
_PAGES = {(brief, since, after): f"SELECT {_BRIEF if brief else _DETAIL} FROM servers s {where}"
                                 f" {_FILTERS}{_AFTER if after else ''} {_PAGE_ORDER}"
          for brief in (False, True) for since, where in ((False, _LIVE), (True, _CHANGED))
          for after in (False, True)}
# Deleted servers may be markers: a client paging a changes-since list meets them.
_MARKER = "SELECT created_at, id FROM servers WHERE id = $1 AND project_id = $2"
_REGEX_OK = "SELECT '' ~ $1::text"


class ServerFilters(msgspec.Struct, frozen=True, kw_only=True):
    """What a list may be narrowed by; None is no filter."""

    changes_since: datetime | None = None
    name_regex: str | None = None
    states: list[str] | None = None
    """``vm_state/task_state`` pairs (``building/scheduling``, ``active/``)."""
    image_id: UUID | None = None
    flavor_id: str | None = None


async def marker_position(conn: asyncpg.Connection, project_id: str,
                          server_id: UUID) -> tuple[datetime, UUID] | None:
    """Where the marker server sorts, or None if the project has no such server."""
    row = await conn.fetchrow(_MARKER, server_id, project_id)
    return (row["created_at"], row["id"]) if row else None


async def regex_valid(conn: asyncpg.Connection, pattern: str) -> bool:
    """Whether PostgreSQL takes ``pattern`` as a regular expression (for ``~``)."""
    try:
        await conn.fetchval(_REGEX_OK, pattern)
    except asyncpg.InvalidRegularExpressionError:
        return False
    return True


async def list_page(conn: asyncpg.Connection, project_id: str, filters: ServerFilters,
                    limit: int, after: tuple[datetime, UUID] | None, *,
                    brief: bool = False) -> list[asyncpg.Record]:
    """One page of the project's servers, newest first, after the marker position:
    the columns of the detail view, or with ``brief`` the id and name only."""
    args = [project_id, filters.changes_since, filters.name_regex, filters.states,
            filters.image_id, filters.flavor_id, limit]
    sql = _PAGES[brief, filters.changes_since is not None, after is not None]
    return await conn.fetch(sql, *args, *(after or ()))


# ---- update and metadata (sections 4.4.1.9, 4.4.1.11-16) --------------------

# A server may be changed while it exists and no delete is under way.
_MUTABLE = """id = $1 AND project_id = $2 AND deleted_at IS NULL AND vm_state <> 'deleted'
   AND task_state IS DISTINCT FROM 'deleting'"""

_UPDATE = f"""
UPDATE servers SET name = coalesce($3, name), access_ipv4 = coalesce($4, access_ipv4),
       access_ipv6 = coalesce($5, access_ipv6), updated_at = now()
 WHERE {_MUTABLE}
RETURNING id"""

_MUTABLE_EXISTS = f"SELECT EXISTS (SELECT 1 FROM servers WHERE {_MUTABLE})"

_METADATA = "SELECT metadata FROM servers WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL"

# The count is checked on the merged value in the same statement: a concurrent
# change makes PostgreSQL re-check the row's newest version before updating it.
_MERGE_METADATA = f"""
UPDATE servers SET metadata = metadata || $3::jsonb, updated_at = now()
 WHERE {_MUTABLE}
   AND ($4::int < 0 OR (SELECT count(*) FROM jsonb_object_keys(metadata || $3::jsonb)) <= $4::int)
RETURNING metadata"""

_REPLACE_METADATA = f"""
UPDATE servers SET metadata = $3::jsonb, updated_at = now() WHERE {_MUTABLE} RETURNING metadata"""

_DELETE_METADATA_KEY = f"""
UPDATE servers SET metadata = metadata - $3::text, updated_at = now()
 WHERE {_MUTABLE} AND metadata ? $3::text
RETURNING id"""


async def update(conn: asyncpg.Connection, project_id: str, server_id: UUID, *,
                 name: str | None, access_ipv4: str | None, access_ipv6: str | None) -> bool:
    """Set the given fields (None: unchanged); False if the server can't be changed."""
    return await conn.fetchval(_UPDATE, server_id, project_id, name, access_ipv4,
                               access_ipv6) is not None


async def is_mutable(conn: asyncpg.Connection, project_id: str, server_id: UUID) -> bool:
    return await conn.fetchval(_MUTABLE_EXISTS, server_id, project_id)


async def get_metadata(conn: asyncpg.Connection, project_id: str,
                       server_id: UUID) -> dict[str, str] | None:
    row = await conn.fetchrow(_METADATA, server_id, project_id)
    return None if row is None else dict(row["metadata"])


async def merge_metadata(conn: asyncpg.Connection, project_id: str, server_id: UUID,
                         items: dict[str, str], allowed: int) -> dict[str, str] | None:
    """Add or overwrite ``items`` if at most ``allowed`` (-1: any) result; the new metadata."""
    row = await conn.fetchrow(_MERGE_METADATA, server_id, project_id, items, allowed)
    return None if row is None else dict(row["metadata"])


async def replace_metadata(conn: asyncpg.Connection, project_id: str, server_id: UUID,
                           items: dict[str, str]) -> dict[str, str] | None:
    row = await conn.fetchrow(_REPLACE_METADATA, server_id, project_id, items)
    return None if row is None else dict(row["metadata"])


async def delete_metadata_key(conn: asyncpg.Connection, project_id: str, server_id: UUID,
                              key: str) -> bool:
    return await conn.fetchval(_DELETE_METADATA_KEY, server_id, project_id, key) is not None


async def list_for_project(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST, project_id)


async def get(conn: asyncpg.Connection, project_id: str, server_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, server_id, project_id)


async def insert(conn: asyncpg.Connection, **v: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        _INSERT, v["id"], v["project_id"], v["user_id"], v["name"], v["image_id"], v["flavor_id"],
        v["flavor"], v["availability_zone"], v["metadata"], v["security_groups"], v["key_name"],
        v["config_drive"], v["reservation_id"], v["request_id"])


_HOLDS_PORTS = "SELECT EXISTS (SELECT 1 FROM ports WHERE server_id = $1)"


async def holds_ports(conn: asyncpg.Connection, server_id: UUID) -> bool:
    """Whether the network service still holds ports for the server (one taken off a
    dead host keeps them, with no host, until it is deleted)."""
    return await conn.fetchval(_HOLDS_PORTS, server_id)


async def zone_known(conn: asyncpg.Connection, zone: str) -> bool:
    """Whether ``zone`` exists: some compute host has reported from it."""
    return await conn.fetchval(_ZONE_KNOWN, zone)


async def first_zone(conn: asyncpg.Connection) -> str | None:
    """The first existing zone by name (None before any compute host reported)."""
    return await conn.fetchval(_FIRST_ZONE)


async def known_groups(conn: asyncpg.Connection, project_id: str, names: list[str]) -> set[str]:
    return {r["name"] for r in await conn.fetch(_GROUPS_KNOWN, project_id, names)}
