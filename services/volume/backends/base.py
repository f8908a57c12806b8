"""The storage backend interface the volume service drives.

A backend holds the bits of volumes and snapshots; the service holds their
rows. Methods take ids and plain values, never database rows. Each docstring
states the post-condition and whether a repeat is harmless: a message may be
handled twice (``shared.rpc.server``), even at once by two processes, so every
method is idempotent. A failure raises :class:`BackendError` worded for the
volume's owner (the tools' own output goes to the log, never to the user) and
leaves nothing of a half-made volume or snapshot behind.
"""

from __future__ import annotations

import abc
from pathlib import Path
from uuid import UUID

from shared.contracts.volume import VolumeConnection


class BackendError(Exception):
    """An operation failed. The message is a sentence for the volume's owner (what
    failed and, where it helps, why: "The volume store is full."), never the text
    of an error from below."""

    retryable = False
    """Whether the same call may succeed a moment later (``shared.retry``)."""


class VolumeBackend(abc.ABC):
    """Where volumes and snapshots live (the file backend; an LVM or Ceph one could follow)."""

    name: str
    """The registry's name for it (``NIMBUS_VOLUME_BACKEND``)."""

    @abc.abstractmethod
    async def create_blank(self, volume_id: UUID, size_gb: int) -> VolumeConnection:
        """Make an empty volume of ``size_gb`` GiB; return how hosts reach it. Made
        already (a repeat): its connection, untouched."""

    @abc.abstractmethod
    async def create_from_snapshot(self, volume_id: UUID, size_gb: int,
                                   snapshot_location: str) -> VolumeConnection:
        """Make a volume holding the data of the snapshot at ``snapshot_location``
        (as :meth:`snapshot` returned it), grown to ``size_gb`` GiB. BackendError
        when the snapshot's data is gone or larger than ``size_gb``. Idempotent."""

    @abc.abstractmethod
    async def create_from_image(self, volume_id: UUID, size_gb: int, image: Path,
                                disk_format: str) -> VolumeConnection:
        """Make a volume holding the disk of the image file ``image`` (``raw`` or
        ``qcow2``), grown to ``size_gb`` GiB. BackendError when the file is
        missing, unreadable, refers to other files, or its disk is larger than
        ``size_gb``. Idempotent."""

    @abc.abstractmethod
    async def delete(self, volume_id: UUID) -> None:
        """Remove the volume's bits, whatever state a create left them in; quietly if
        there are none."""

    @abc.abstractmethod
    async def snapshot(self, snapshot_id: UUID, volume: VolumeConnection) -> str:
        """Copy the volume as it is now into the snapshot ``snapshot_id``; return the
        snapshot's location (a name only this backend reads). The volume may be in
        use by a running guest: the copy is what a power cut would leave on its
        disk. The snapshot is independent of the volume (deleting the volume never
        breaks it). Made already: its location, untouched."""

    @abc.abstractmethod
    async def delete_snapshot(self, snapshot_id: UUID, location: str | None) -> None:
        """Remove the snapshot's bits (``location`` as :meth:`snapshot` returned it,
        None if it never finished); quietly if there are none."""

    async def remove_leftovers(self, older_than_s: float) -> int:
        """Remove what creates that died half-way left behind and nobody has touched
        for ``older_than_s`` seconds; how many. Nothing by default."""
        return 0
