"""The volume service's handler of the ``volume`` queue: one method per message of
``shared.contracts.volume``.

Each reads the row the message names and acts only if it is in the transient
status the message is about (a repeat, a late copy, or a message for a row the
sweep already failed does nothing), does the work through the backend with no
database connection held, and ends the status with a guarded update. A failure
of the work ends the row in its failed status with a reason in the user's terms
(the backend's :class:`BackendError` sentence; anything unexpected is logged and
told as an internal error). Transient failures (the database away) propagate:
the RPC server handles the message again, then calls :meth:`give_up`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar
from uuid import UUID

import asyncpg
import structlog

from services.volume.backends import BackendError, VolumeBackend
from shared.contracts.volume import (
    CreateSnapshot,
    CreateVolume,
    DeleteSnapshot,
    DeleteVolume,
    VolumeConnection,
    VolumeMessage,
)
from shared.db import images, volumes
from shared.image_store import ImageStore
from shared.retry import is_transient
from shared.rpc.server import CallContext
from shared.volume_states import (
    CREATE,
    DELETE,
    SNAPSHOT_CREATE,
    SNAPSHOT_DELETE,
    SnapshotStatus,
    VolumeStatus,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

GAVE_UP = "a service it needs stayed unavailable."


class WorkFailed(Exception):
    """The work of a message failed; the message is the reason the user reads."""


class VolumeHandler:
    """Serves the ``volume`` queue; every method is idempotent."""

    def __init__(self, pool: asyncpg.Pool, backend: VolumeBackend, images: ImageStore) -> None:
        self._pool = pool
        self._backend = backend
        self._images = images

    async def __call__(self, msg: VolumeMessage, ctx: CallContext) -> None:
        match msg:
            case CreateVolume():
                await self.create_volume(msg.volume_id, ctx)
            case DeleteVolume():
                await self.delete_volume(msg.volume_id, ctx)
            case CreateSnapshot():
                await self.create_snapshot(msg.snapshot_id)
            case DeleteSnapshot():
                await self.delete_snapshot(msg.snapshot_id)
            case _:
                raise TypeError(f"unexpected message {type(msg).__name__}")

    # -- volumes

    async def create_volume(self, volume_id: UUID, ctx: CallContext) -> None:
        """``creating`` -> ``available`` with the backend's connection (blank, from its
        snapshot or from its image), or ``error`` with why."""
        vlog = log.bind(volume_id=str(volume_id))
        try:
            async with self._pool.acquire() as conn:
                row = await volumes.get(conn, volume_id)
                if not _in(row, VolumeStatus.CREATING):
                    vlog.info("volume.ignored", message="create", status=row and row["status"])
                    return
                make, bootable = await self._source(conn, row)
            connection = await _work(make(), "The volume could not be created.")
        except WorkFailed as exc:
            async with self._pool.acquire() as conn:
                await volumes.end(conn, volume_id, CREATE, failed=str(exc),
                                  request_id=ctx.request_id)
            vlog.warning("volume.create_failed", reason=str(exc))
            return
        async with self._pool.acquire() as conn:
            done = await volumes.set_created(conn, volume_id, connection, bootable=bootable)
        vlog.info("volume.created" if done else "volume.create_superseded",
                  file=connection.name, bootable=bootable)

    async def _source(self, conn: asyncpg.Connection,
                      row: asyncpg.Record) -> tuple[Callable[[], Awaitable[VolumeConnection]],
                                                    bool]:
        """The backend call that makes the volume's bits, and whether it is bootable."""
        vid, size = row["id"], row["size_gb"]
        if row["snapshot_id"] is not None:
            sid = row["snapshot_id"]
            snap = await volumes.get_snapshot(conn, sid)
            if not _in(snap, SnapshotStatus.AVAILABLE) or snap["location"] is None:
                raise WorkFailed(f"Snapshot {sid} is not available.")
            source = await volumes.get(conn, snap["volume_id"])
            bootable = bool(source and source["bootable"])
            return partial(self._backend.create_from_snapshot, vid, size, snap["location"]), \
                bootable
        if row["image_id"] is not None:
            iid = row["image_id"]
            image = await images.get_any(conn, iid)
            if image is None or image["deleted_at"] is not None or image["status"] != "ACTIVE":
                raise WorkFailed(f"Image {iid} is not available.")
            if image["location"] is None:
                raise WorkFailed(f"Image {iid} has no data.")
            try:
                path = self._images.path(image["location"])
            except ValueError:
                log.error("volume.bad_image_location", image_id=str(iid))
                raise WorkFailed(f"Image {iid} has no data.") from None
            return partial(self._backend.create_from_image, vid, size, path,
                           image["disk_format"]), True
        return partial(self._backend.create_blank, vid, size), False

    async def delete_volume(self, volume_id: UUID, ctx: CallContext) -> None:
        """``deleting`` -> deleted, its bits removed; or ``error_deleting`` with why."""
        vlog = log.bind(volume_id=str(volume_id))
        async with self._pool.acquire() as conn:
            row = await volumes.get(conn, volume_id)
        if not _in(row, VolumeStatus.DELETING):
            vlog.info("volume.ignored", message="delete", status=row and row["status"])
            return
        try:
            await _work(self._backend.delete(volume_id), "The volume could not be deleted.")
        except WorkFailed as exc:
            async with self._pool.acquire() as conn:
                await volumes.end(conn, volume_id, DELETE, failed=str(exc),
                                  request_id=ctx.request_id)
            vlog.warning("volume.delete_failed", reason=str(exc))
            return
        async with self._pool.acquire() as conn:
            await volumes.mark_deleted(conn, volume_id)
        vlog.info("volume.deleted")

    # -- snapshots

    async def create_snapshot(self, snapshot_id: UUID) -> None:
        """``creating`` -> ``available`` with a copy of its volume as it is now, or
        ``error`` with why."""
        slog = log.bind(snapshot_id=str(snapshot_id))
        try:
            async with self._pool.acquire() as conn:
                snap = await volumes.get_snapshot(conn, snapshot_id)
                if not _in(snap, SnapshotStatus.CREATING):
                    slog.info("snapshot.ignored", message="create",
                              status=snap and snap["status"])
                    return
                volume = await volumes.get(conn, snap["volume_id"])
            connection = volumes.connection_of(volume) if volume is not None else None
            if connection is None:
                raise WorkFailed(f"Volume {snap['volume_id']} has no data to copy.")
            location = await _work(self._backend.snapshot(snapshot_id, connection),
                                   "The snapshot could not be made.")
        except WorkFailed as exc:
            async with self._pool.acquire() as conn:
                await volumes.end_snapshot(conn, snapshot_id, SNAPSHOT_CREATE, failed=str(exc))
            slog.warning("snapshot.create_failed", reason=str(exc))
            return
        async with self._pool.acquire() as conn:
            done = await volumes.end_snapshot(conn, snapshot_id, SNAPSHOT_CREATE,
                                              location=location)
        slog.info("snapshot.created" if done else "snapshot.create_superseded",
                  volume_id=str(snap["volume_id"]), file=location)

    async def delete_snapshot(self, snapshot_id: UUID) -> None:
        """``deleting`` -> deleted, its bits removed; or ``error_deleting`` with why."""
        slog = log.bind(snapshot_id=str(snapshot_id))
        async with self._pool.acquire() as conn:
            snap = await volumes.get_snapshot(conn, snapshot_id)
        if not _in(snap, SnapshotStatus.DELETING):
            slog.info("snapshot.ignored", message="delete", status=snap and snap["status"])
            return
        try:
            await _work(self._backend.delete_snapshot(snapshot_id, snap["location"]),
                        "The snapshot could not be deleted.")
        except WorkFailed as exc:
            async with self._pool.acquire() as conn:
                await volumes.end_snapshot(conn, snapshot_id, SNAPSHOT_DELETE, failed=str(exc))
            slog.warning("snapshot.delete_failed", reason=str(exc))
            return
        async with self._pool.acquire() as conn:
            await volumes.mark_snapshot_deleted(conn, snapshot_id)
        slog.info("snapshot.deleted")

    # -- retries ran out

    async def give_up(self, msg: VolumeMessage, ctx: CallContext, exc: BaseException) -> None:
        """The retries of ``msg`` ran out (``shared.rpc.server``): its row ends in its
        failed status with a reason (if it is still in the status the message was
        about)."""
        async with self._pool.acquire() as conn:
            match msg:
                case CreateVolume():
                    await volumes.end(conn, msg.volume_id, CREATE, request_id=ctx.request_id,
                                      failed=f"The volume could not be created: {GAVE_UP}")
                case DeleteVolume():
                    await volumes.end(conn, msg.volume_id, DELETE, request_id=ctx.request_id,
                                      failed=f"The volume could not be deleted: {GAVE_UP}")
                case CreateSnapshot():
                    await volumes.end_snapshot(conn, msg.snapshot_id, SNAPSHOT_CREATE,
                                               failed=f"The snapshot could not be made: {GAVE_UP}")
                case DeleteSnapshot():
                    await volumes.end_snapshot(
                        conn, msg.snapshot_id, SNAPSHOT_DELETE,
                        failed=f"The snapshot could not be deleted: {GAVE_UP}")


def _in(row: asyncpg.Record | None, status: str) -> bool:
    return row is not None and row["deleted_at"] is None and row["status"] == status


async def _work(call: Awaitable[T], unexpected: str) -> T:
    """Await the backend's ``call``. Its BackendError becomes WorkFailed with its
    sentence; a transient error propagates (the message is tried again); anything
    else is a bug, logged, and WorkFailed(``unexpected`` + an internal error)."""
    try:
        return await call
    except BackendError as exc:
        raise WorkFailed(str(exc)) from None
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("volume.backend_bug")
        raise WorkFailed(f"{unexpected} An internal error occurred.") from None
