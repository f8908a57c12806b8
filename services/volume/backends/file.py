"""The file backend: one qcow2 file per volume and per snapshot in the volume store.

Layout (``NIMBUS_VOLUMES_DIR``, shared with every compute host)::

    volume-<volume id>.qcow2       a volume (its VolumeConnection names this file)
    snapshot-<snapshot id>.qcow2   a snapshot: a full, independent copy of its volume
    <either>.<random>.part         being written (a create that died leaves one)

Every file is made by ``qemu-img`` under a ``.part`` name of its own (two
deliveries of one message running at once never write the same file), flushed
to disk and renamed into place, so a volume's file either is complete or is
not there; a repeat finds it there and is done. Volumes hold user data: the
directory is the owner's only (0700) and so is every file (0600), so the
processes that open them (this service, the compute agents, their QEMUs) run
as one user.

A snapshot of a volume in use by a running guest is read with QEMU's
force-share (``-U``): the copy is what a power cut at that moment would leave
on the disk, as a crash-consistent snapshot (Cinder's ``force``) is.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

import structlog

from services.volume.backends import BackendContext
from services.volume.backends import qemu_img
from services.volume.backends.base import BackendError, VolumeBackend
from shared.contracts.volume import VolumeConnection
from shared.volume_store import VolumeStore

log = structlog.get_logger(__name__)

GIB = 1024 ** 3
FORMAT = "qcow2"


def volume_file(volume_id: UUID) -> str:
    return f"volume-{volume_id}.{FORMAT}"


def snapshot_file(snapshot_id: UUID) -> str:
    return f"snapshot-{snapshot_id}.{FORMAT}"


def _gb(size_bytes: int) -> int:
    return math.ceil(size_bytes / GIB)


class FileBackend(VolumeBackend):
    name = "file"

    def __init__(self, store: VolumeStore, *, tool_timeout_s: float) -> None:
        self._store = store
        self._timeout_s = tool_timeout_s

    @classmethod
    def from_context(cls, context: BackendContext) -> FileBackend:
        return cls(context.store, tool_timeout_s=context.tool_timeout_s)

    @property
    def root(self) -> Path:
        return Path(self._store.root)

    # -- volumes

    async def create_blank(self, volume_id: UUID, size_gb: int) -> VolumeConnection:
        name = volume_file(volume_id)
        failed = "The volume could not be created."
        if not self._made(name):
            async with self._writing(name, failed) as part:
                await self._qemu_img("create", "-q", "-f", FORMAT, str(part),
                                     str(size_gb * GIB), failed=failed)
        return _connection(name)

    async def create_from_snapshot(self, volume_id: UUID, size_gb: int,
                                   snapshot_location: str) -> VolumeConnection:
        name = volume_file(volume_id)
        failed = "The volume could not be made from the snapshot."
        if not self._made(name):
            source = self._existing(snapshot_location, f"{failed} The snapshot's data is gone.")
            await self._copy(source, FORMAT, name, size_gb, failed=failed, what="snapshot")
        return _connection(name)

    async def create_from_image(self, volume_id: UUID, size_gb: int, image: Path,
                                disk_format: str) -> VolumeConnection:
        name = volume_file(volume_id)
        failed = "The volume could not be made from the image."
        if not self._made(name):
            if not image.is_file():
                log.error("volume.image_file_missing", image=str(image))
                raise BackendError(f"{failed} The image has no data.")
            await self._copy(image, disk_format, name, size_gb, failed=failed, what="image")
        return _connection(name)

    async def delete(self, volume_id: UUID) -> None:
        await asyncio.to_thread(self._remove, volume_file(volume_id),
                                "The volume's data could not be removed.")

    # -- snapshots

    async def snapshot(self, snapshot_id: UUID, volume: VolumeConnection) -> str:
        name = snapshot_file(snapshot_id)
        failed = "The snapshot could not be made."
        if self._made(name):
            return name
        try:
            source = self._store.connect(volume)
        except ValueError:
            log.error("volume.snapshot_source_elsewhere", connection=str(volume))
            raise BackendError(f"{failed} The volume's data is not in this volume store.") \
                from None
        if not source.is_file():
            log.error("volume.snapshot_source_missing", path=str(source))
            raise BackendError(f"{failed} The volume's data is gone.")
        async with self._writing(name, failed) as part:
            # -U: a running guest's QEMU holds the volume's write lock.
            await self._qemu_img("convert", "-U", "-f", volume.format, "-O", FORMAT,
                                 str(source), str(part), failed=failed)
        return name

    async def delete_snapshot(self, snapshot_id: UUID, location: str | None) -> None:
        failed = "The snapshot's data could not be removed."
        names = {snapshot_file(snapshot_id)} | ({location} if location else set())
        for name in sorted(names):
            await asyncio.to_thread(self._remove, name, failed)

    async def remove_leftovers(self, older_than_s: float) -> int:
        return await asyncio.to_thread(self._remove_leftovers, older_than_s)

    # -- the files

    def _made(self, name: str) -> bool:
        made = self._store.path(name).is_file()
        if made:
            log.info("volume.file_exists", file=name)  # a repeat: the work is done
        return made

    def _existing(self, location: str, missing: str) -> Path:
        try:
            path = self._store.path(location)
        except ValueError:
            path = None
        if path is None or not path.is_file():
            log.error("volume.source_missing", location=location)
            raise BackendError(missing)
        return path

    async def _copy(self, source: Path, source_format: str, name: str, size_gb: int, *,
                    failed: str, what: str) -> None:
        """``name``: the disk of ``source`` as qcow2, grown to ``size_gb``."""
        details = await qemu_img.info(source, source_format, failed=failed,
                                      timeout_s=self._timeout_s)
        if qemu_img.refers_elsewhere(details):
            log.error("volume.source_refers_elsewhere", source=str(source))
            raise BackendError(f"{failed} The {what} refers to other files.")
        virtual = int(details["virtual-size"])
        if virtual > size_gb * GIB:
            raise BackendError(f"{failed} The {what}'s disk ({_gb(virtual)} GB) is larger "
                               f"than the volume ({size_gb} GB).")
        async with self._writing(name, failed) as part:
            await self._qemu_img("convert", "-f", source_format, "-O", FORMAT, str(source),
                                 str(part), failed=failed)
            if virtual < size_gb * GIB:
                await self._qemu_img("resize", "-q", "-f", FORMAT, str(part),
                                     str(size_gb * GIB), failed=failed)

    async def _qemu_img(self, *args: str, failed: str) -> bytes:
        return await qemu_img.run(*args, failed=failed, timeout_s=self._timeout_s)

    @asynccontextmanager
    async def _writing(self, name: str, failed: str) -> AsyncIterator[Path]:
        """A path of its own to write ``name`` at; once the block is done the file is
        made owner-only, flushed and renamed into place. Nothing of it stays if
        the block (or that) fails."""
        final = self._store.path(name)
        try:
            await asyncio.to_thread(self._ensure_root)
        except OSError as exc:
            raise _os_failure(failed, exc, path=str(self.root)) from None
        part = final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            yield part
            await asyncio.to_thread(_commit, part, final)
        except OSError as exc:
            raise _os_failure(failed, exc, path=str(part)) from None
        finally:
            part.unlink(missing_ok=True)

    def _ensure_root(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o777 != 0o700:
            self.root.chmod(0o700)

    def _remove(self, name: str, failed: str) -> None:
        try:
            final = self._store.path(name)
        except ValueError:
            log.error("volume.bad_location", location=name)
            return  # never a file of this store: nothing of ours to remove
        try:
            for part in final.parent.glob(f"{final.name}.*.part"):
                part.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # the store itself is gone
        except OSError as exc:
            raise _os_failure(failed, exc, path=str(final)) from None
        log.info("volume.file_removed", file=name)

    def _remove_leftovers(self, older_than_s: float) -> int:
        removed = 0
        cutoff = time.time() - older_than_s
        for part in self.root.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed += 1
                    log.info("volume.leftover_removed", file=part.name)
            except FileNotFoundError:
                pass  # its writer finished (or gave up) meanwhile
        return removed


def _connection(name: str) -> VolumeConnection:
    return VolumeConnection(driver_volume_type="file", name=name, format=FORMAT)


def _commit(part: Path, final: Path) -> None:
    os.chmod(part, 0o600)
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_failure(failed: str, exc: OSError, *, path: str) -> BackendError:
    log.error("volume.file_error", path=path, error=f"{type(exc).__name__}: {exc}")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackendError(f"{failed} {qemu_img.STORE_FULL}")
    return BackendError(failed)
