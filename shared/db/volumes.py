"""SQL for the ``volumes``, ``volume_snapshots`` and ``volume_types`` tables that
more than one service writes (the API, the volume service, the compute agents).

Every status change is a guarded update along ``shared.volume_states``: it
names the status it expects, so a message delivered twice, a sweep and a late
worker cannot all move one volume. A transient status remembers the request that
began it (``status_request_id``); an end names it too when it knows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from shared.contracts.compute import BlockDevice
from shared.contracts.volume import VolumeConnection
from shared.volume_states import (
    ATTACH,
    DETACH,
    SnapshotStatus,
    VolumeStatus,
    VolumeTransition,
)

_GET = "SELECT * FROM volumes WHERE id = $1"
_GET_SNAPSHOT = "SELECT * FROM volume_snapshots WHERE id = $1"

# Begin an operation on a live volume of the project from one of its statuses.
_BEGIN = """
UPDATE volumes SET status = $3, status_request_id = $4, error_reason = NULL, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL AND status = ANY($5::text[])
RETURNING *"""

# End an operation: from its transient status to where it ends.
_END = """
UPDATE volumes SET status = $3, error_reason = $4, updated_at = now()
 WHERE id = $1 AND status = $2 AND deleted_at IS NULL
   AND ($5::text IS NULL OR status_request_id IS NULL OR status_request_id = $5)
RETURNING *"""

_BEGIN_ATTACH = """
UPDATE volumes SET status = 'attaching', status_request_id = $4, server_id = $3, device = $5,
       error_reason = NULL, updated_at = now()
 WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL AND status = 'available'
   AND server_id IS NULL
RETURNING *"""

# A failed attach or a finished detach: the volume is free again.
_FREE = """
UPDATE volumes SET status = 'available', server_id = NULL, device = NULL, boot = false,
       delete_on_termination = false, error_reason = $4, updated_at = now()
 WHERE id = $1 AND status = $2 AND server_id = $3 AND deleted_at IS NULL
RETURNING *"""

# Volumes of a server that was deleted: free them, or start deleting those that
# were to go with it (their DeleteVolume is written by the caller).
_RELEASE_KEPT = """
UPDATE volumes SET status = 'available', server_id = NULL, device = NULL, boot = false,
       delete_on_termination = false, status_request_id = NULL, updated_at = now()
 WHERE server_id = $1 AND deleted_at IS NULL AND NOT delete_on_termination
RETURNING id"""

_RELEASE_DOOMED = """
UPDATE volumes SET status = 'deleting', server_id = NULL, device = NULL, boot = false,
       status_request_id = $2, updated_at = now()
 WHERE server_id = $1 AND deleted_at IS NULL AND delete_on_termination
RETURNING id"""

_OF_SERVER = """
SELECT * FROM volumes WHERE server_id = $1 AND deleted_at IS NULL ORDER BY device"""

_MARK_DELETED = """
UPDATE volumes SET deleted_at = now(), updated_at = now(), connection = NULL
 WHERE id = $1 AND status = 'deleting' AND deleted_at IS NULL
RETURNING id"""

_SET_CREATED = """
UPDATE volumes SET status = 'available', connection = $2, bootable = $3, error_reason = NULL,
       updated_at = now()
 WHERE id = $1 AND status = 'creating' AND deleted_at IS NULL
RETURNING id"""

_BEGIN_SNAPSHOT_DELETE = """
UPDATE volume_snapshots SET status = 'deleting', status_request_id = $3, error_reason = NULL,
       updated_at = now()
 WHERE id = $1 AND project_id = $2 AND deleted_at IS NULL AND status = ANY($4::text[])
RETURNING *"""

_END_SNAPSHOT = """
UPDATE volume_snapshots SET status = $3, error_reason = $4, location = coalesce($5, location),
       updated_at = now()
 WHERE id = $1 AND status = $2 AND deleted_at IS NULL
RETURNING *"""

_MARK_SNAPSHOT_DELETED = """
UPDATE volume_snapshots SET deleted_at = now(), updated_at = now(), location = NULL
 WHERE id = $1 AND status = 'deleting' AND deleted_at IS NULL
RETURNING id"""

_LIVE_SNAPSHOTS = """
SELECT count(*) FROM volume_snapshots WHERE volume_id = $1 AND deleted_at IS NULL"""

_STUCK = """
SELECT * FROM volumes
 WHERE status IN ('creating', 'attaching', 'detaching', 'deleting') AND deleted_at IS NULL
   AND updated_at < now() - make_interval(secs => $1)"""

_STUCK_SNAPSHOTS = """
SELECT * FROM volume_snapshots
 WHERE status IN ('creating', 'deleting') AND deleted_at IS NULL
   AND updated_at < now() - make_interval(secs => $1)"""

# Attaches and detaches waiting on one of the given compute hosts (the server's).
_MOVING_ON_HOSTS = """
SELECT v.*, s.host AS server_host FROM volumes v JOIN servers s ON s.id = v.server_id
 WHERE v.status IN ('attaching', 'detaching') AND v.deleted_at IS NULL
   AND s.host = ANY($1::text[])"""

_UPSERT_TYPE = """
INSERT INTO volume_types (id, name, extra_specs) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET extra_specs = excluded.extra_specs"""

VOLUME_TYPE_NAMESPACE = UUID("5d1c0b8e-2f4a-4e0b-9a57-3c1f0e6b7a21")


def volume_type_id(name: str) -> UUID:
    """A type's id, the same on every deployment for the same name."""
    return uuid.uuid5(VOLUME_TYPE_NAMESPACE, name)


async def get(conn: asyncpg.Connection, volume_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, volume_id)


async def get_snapshot(conn: asyncpg.Connection, snapshot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET_SNAPSHOT, snapshot_id)


def connection_of(row: asyncpg.Record) -> VolumeConnection | None:
    """The volume's :class:`VolumeConnection` (None before its bits exist)."""
    raw = row["connection"]
    if raw is None:
        return None
    return msgspec.convert(raw if isinstance(raw, dict) else msgspec.json.decode(raw),
                           VolumeConnection)


async def begin(conn: asyncpg.Connection, volume_id: UUID, project_id: str,
                transition: VolumeTransition, *, request_id: str | None) -> asyncpg.Record | None:
    """Move the project's volume into ``transition.during`` if its status allows;
    None (nothing changed) otherwise."""
    return await conn.fetchrow(_BEGIN, volume_id, project_id, transition.during, request_id,
                               list(transition.allowed_from))


async def end(conn: asyncpg.Connection, volume_id: UUID, transition: VolumeTransition, *,
              failed: str | None = None, request_id: str | None = None) -> asyncpg.Record | None:
    """End ``transition``: to its ``done`` status, or to its ``failed`` one with the
    reason ``failed``. None if the volume was not in ``transition.during``
    (someone else ended it)."""
    if failed is None:
        assert transition.done is not None, "a delete ends with mark_deleted"
        return await conn.fetchrow(_END, volume_id, transition.during, transition.done, None,
                                   request_id)
    return await conn.fetchrow(_END, volume_id, transition.during, transition.failed, failed,
                               request_id)


async def set_created(conn: asyncpg.Connection, volume_id: UUID, connection: VolumeConnection,
                      *, bootable: bool) -> bool:
    """``creating`` -> ``available`` with the connection its backend made."""
    return await conn.fetchval(_SET_CREATED, volume_id, msgspec.to_builtins(connection),
                               bootable) is not None


async def mark_deleted(conn: asyncpg.Connection, volume_id: UUID) -> bool:
    """``deleting`` -> deleted (its row stays, with ``deleted_at``)."""
    return await conn.fetchval(_MARK_DELETED, volume_id) is not None


async def begin_attach(conn: asyncpg.Connection, volume_id: UUID, project_id: str,
                       server_id: UUID, device: str, *,
                       request_id: str | None) -> asyncpg.Record | None:
    """``available`` -> ``attaching`` to ``server_id`` as ``device``; None if the
    volume is not the project's, or not available."""
    return await conn.fetchrow(_BEGIN_ATTACH, volume_id, project_id, server_id, request_id,
                               device)


async def end_attach(conn: asyncpg.Connection, volume_id: UUID, server_id: UUID, *,
                     failed: str | None = None) -> bool:
    """``attaching`` -> ``in-use``; or, with ``failed``, back to ``available``
    (the guest never saw it)."""
    if failed is None:
        return await conn.fetchval(
            "UPDATE volumes SET status = 'in-use', updated_at = now() WHERE id = $1 "
            "AND status = 'attaching' AND server_id = $2 AND deleted_at IS NULL RETURNING id",
            volume_id, server_id) is not None
    return await conn.fetchval(_FREE, volume_id, ATTACH.during, server_id, failed) is not None


async def end_detach(conn: asyncpg.Connection, volume_id: UUID, server_id: UUID, *,
                     failed: str | None = None) -> bool:
    """``detaching`` -> ``available`` (free); or, with ``failed``, back to ``in-use``."""
    if failed is None:
        return await conn.fetchval(_FREE, volume_id, DETACH.during, server_id, None) is not None
    return await conn.fetchval(
        "UPDATE volumes SET status = 'in-use', error_reason = $3, updated_at = now() "
        "WHERE id = $1 AND status = 'detaching' AND server_id = $2 AND deleted_at IS NULL "
        "RETURNING id", volume_id, server_id, failed) is not None


async def of_server(conn: asyncpg.Connection, server_id: UUID) -> list[asyncpg.Record]:
    """The volumes attached (or attaching, or detaching) to the server, by device."""
    return list(await conn.fetch(_OF_SERVER, server_id))


async def block_devices(conn: asyncpg.Connection, server_id: UUID) -> tuple[BlockDevice, ...]:
    """The volumes the server's guest has plugged in now (in-use or detaching)."""
    out = []
    for row in await of_server(conn, server_id):
        connection = connection_of(row)
        if row["status"] in (VolumeStatus.IN_USE, VolumeStatus.DETACHING) and connection:
            out.append(BlockDevice(volume_id=row["id"], device=row["device"],
                                   connection=connection, boot=row["boot"]))
    return tuple(out)


async def release_server(conn: asyncpg.Connection, server_id: UUID, *,
                         request_id: str | None = None) -> tuple[list[UUID], list[UUID]]:
    """The server is gone: its volumes are free again, except those that were to go
    with it (``delete_on_termination``), which are now ``deleting``. Returns
    ``(freed, to_delete)``; the caller writes a DeleteVolume for each of the
    latter in the same transaction. Idempotent (a second call finds none)."""
    freed = [r["id"] for r in await conn.fetch(_RELEASE_KEPT, server_id)]
    doomed = [r["id"] for r in await conn.fetch(_RELEASE_DOOMED, server_id, request_id)]
    return freed, doomed


async def live_snapshots(conn: asyncpg.Connection, volume_id: UUID) -> int:
    return int(await conn.fetchval(_LIVE_SNAPSHOTS, volume_id))


async def begin_snapshot_delete(conn: asyncpg.Connection, snapshot_id: UUID, project_id: str, *,
                                request_id: str | None,
                                allowed: Iterable[str]) -> asyncpg.Record | None:
    return await conn.fetchrow(_BEGIN_SNAPSHOT_DELETE, snapshot_id, project_id, request_id,
                               list(allowed))


async def end_snapshot(conn: asyncpg.Connection, snapshot_id: UUID, transition: VolumeTransition,
                       *, failed: str | None = None,
                       location: str | None = None) -> asyncpg.Record | None:
    """End a snapshot's ``transition`` (see :func:`end`); ``location`` is where its
    bits went (a finished create)."""
    status = transition.failed if failed is not None else transition.done
    assert status is not None, "a snapshot delete ends with mark_snapshot_deleted"
    return await conn.fetchrow(_END_SNAPSHOT, snapshot_id, transition.during, status, failed,
                               location)


async def mark_snapshot_deleted(conn: asyncpg.Connection, snapshot_id: UUID) -> bool:
    return await conn.fetchval(_MARK_SNAPSHOT_DELETED, snapshot_id) is not None


async def stuck(conn: asyncpg.Connection, older_than_s: float) -> list[asyncpg.Record]:
    """Volumes in a transient status that has not moved for ``older_than_s``."""
    return list(await conn.fetch(_STUCK, older_than_s))


async def stuck_snapshots(conn: asyncpg.Connection, older_than_s: float) -> list[asyncpg.Record]:
    return list(await conn.fetch(_STUCK_SNAPSHOTS, older_than_s))


async def moving_on_hosts(conn: asyncpg.Connection, hosts: list[str]) -> list[asyncpg.Record]:
    """Volumes attaching or detaching to a server on one of ``hosts`` (each row with
    ``server_host``)."""
    return list(await conn.fetch(_MOVING_ON_HOSTS, hosts))


async def sync_types(conn: asyncpg.Connection, types: dict[str, dict[str, Any]]) -> None:
    """Make sure every configured volume type exists (name -> extra specs). Types
    no longer configured stay: volumes may still name them."""
    for name, extra_specs in types.items():
        await conn.execute(_UPSERT_TYPE, volume_type_id(name), name, extra_specs)


__all__ = ["SnapshotStatus", "VolumeStatus"]
