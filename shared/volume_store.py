"""The volume store: the directory the file backend keeps volumes and snapshots in.

The volume service writes there; every compute host reaches the same directory
(``NIMBUS_VOLUMES_DIR``: a local path on one machine, a shared filesystem in a
cluster, as Cinder's NFS backend shares one with its computes) and attaches a
volume by the name its :class:`~shared.contracts.volume.VolumeConnection`
carries. Names are bare file names: a connection never reaches outside.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from shared.contracts.volume import VolumeConnection

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class VolumeStoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    dir: str = ".run/volumes"
    """Directory of the volume and snapshot files, shared by the volume service and
    every compute agent (``NIMBUS_VOLUMES_DIR``); relative paths are from the
    working directory."""


class VolumeStore(msgspec.Struct, frozen=True):
    root: str

    @classmethod
    def from_settings(cls, settings: VolumeStoreSettings) -> VolumeStore:
        return cls(str(Path(settings.dir).absolute()))

    def path(self, name: str) -> Path:
        """The file ``name`` names; ValueError for anything but a bare name."""
        if not _NAME.match(name) or name.endswith(".part"):
            raise ValueError(f"not a volume file name: {name!r}")
        return Path(self.root) / name

    def connect(self, connection: VolumeConnection) -> Path:
        """The local path of a ``file`` volume; ValueError for another type."""
        if connection.driver_volume_type != "file":
            raise ValueError(f"cannot reach a {connection.driver_volume_type!r} volume")
        return self.path(connection.name)
