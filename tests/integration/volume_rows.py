"""Rows as the API writes them for the volume service's tests: volumes, snapshots and
images in their first status, and the way to wait for the service to end them."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from shared.db import volumes
from shared.volume_states import DELETE, SNAPSHOT_DELETE, SnapshotStatus, VolumeStatus
from tests.e2e.client import eventually

PROJECT = "demo"

_VOLUME_TRANSIENT = (VolumeStatus.CREATING, VolumeStatus.ATTACHING, VolumeStatus.DETACHING,
                     VolumeStatus.DELETING)
_SNAPSHOT_TRANSIENT = (SnapshotStatus.CREATING, SnapshotStatus.DELETING)


async def add_volume(conn: asyncpg.Connection, size_gb: int = 1, *, status: str = "creating",
                     snapshot_id: UUID | None = None, image_id: UUID | None = None,
                     request_id: str | None = None) -> UUID:
    vid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO volumes (id, project_id, user_id, status, size_gb, display_name,
                                availability_zone, snapshot_id, image_id, status_request_id)
           VALUES ($1, $2, 'u-demo', $3, $4, $5, 'az1', $6, $7, $8)""",
        vid, PROJECT, status, size_gb, f"vol-{vid.hex[:6]}", snapshot_id, image_id, request_id)
    return vid


async def add_snapshot(conn: asyncpg.Connection, volume_id: UUID) -> UUID:
    sid = uuid.uuid4()
    size = await conn.fetchval("SELECT size_gb FROM volumes WHERE id = $1", volume_id)
    await conn.execute(
        """INSERT INTO volume_snapshots (id, project_id, user_id, volume_id, status, size_gb)
           VALUES ($1, $2, 'u-demo', $3, 'creating', $4)""", sid, PROJECT, volume_id, size)
    return sid


async def add_image(conn: asyncpg.Connection, location: str | None, disk_format: str = "raw",
                    *, status: str = "ACTIVE") -> UUID:
    iid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO images (id, name, status, location, disk_format)
           VALUES ($1, $2, $3, $4, $5)""", iid, f"img-{iid.hex[:6]}", status, location,
        disk_format)
    return iid


async def begin_delete(conn: asyncpg.Connection, volume_id: UUID, request_id: str) -> None:
    assert await volumes.begin(conn, volume_id, PROJECT, DELETE, request_id=request_id)


async def begin_snapshot_delete(conn: asyncpg.Connection, snapshot_id: UUID) -> None:
    assert await volumes.begin_snapshot_delete(conn, snapshot_id, PROJECT, request_id=None,
                                               allowed=SNAPSHOT_DELETE.allowed_from)


async def settled_volume(conn: asyncpg.Connection, volume_id: UUID,
                         timeout: float = 30.0) -> asyncpg.Record:
    """The volume's row once its status is no longer transient (or it is deleted)."""
    async def settled() -> asyncpg.Record | None:
        row = await volumes.get(conn, volume_id)
        done = row["deleted_at"] is not None or row["status"] not in _VOLUME_TRANSIENT
        return row if done else None
    return await eventually(settled, timeout=timeout)


async def settled_snapshot(conn: asyncpg.Connection, snapshot_id: UUID,
                           timeout: float = 30.0) -> asyncpg.Record:
    async def settled() -> asyncpg.Record | None:
        row = await volumes.get_snapshot(conn, snapshot_id)
        done = row["deleted_at"] is not None or row["status"] not in _SNAPSHOT_TRANSIENT
        return row if done else None
    return await eventually(settled, timeout=timeout)
