"""The image store: one directory holding every image's file (qcow2 or raw).

The database row of an image names its file (``images.location``, a bare file
name) and format; the file's size is the image's ``OS-EXT-IMG-SIZE:size``. The
API and every compute agent reach the same directory (``NIMBUS_IMAGES_DIR``: a
local path on one machine, a shared volume in a cluster); agents read images
from it to make guests' disks and write snapshots into it.

A file is written under a temporary name and renamed into place, so a reader
never sees half an image, and a writer that dies leaves only a ``.part`` file
that the next write of the same image replaces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import msgspec

DISK_FORMATS = ("raw", "qcow2")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class ImageStoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    dir: str = ".run/images"
    """Directory of the image files, shared by the API and every compute agent
    (``NIMBUS_IMAGES_DIR``); relative paths are from the working directory."""
    seed_tiny: str = ""
    """A built Nimbus Tiny Linux disk (``python -m deploy.guest_image build``) that
    ``manage bootstrap`` copies into the store and seeds as a public image
    (``NIMBUS_IMAGES_SEED_TINY``; ``make up`` and the tests set it); empty: not seeded."""


class ImageFile(msgspec.Struct, frozen=True, kw_only=True):
    """An image's file in the store."""

    location: str
    disk_format: str
    size_bytes: int


class ImageStore(msgspec.Struct, frozen=True):
    root: str

    @classmethod
    def from_settings(cls, settings: ImageStoreSettings) -> ImageStore:
        return cls(str(Path(settings.dir).absolute()))

    def path(self, location: str) -> Path:
        """The file ``location`` names; ValueError for anything but a bare name
        (a location never leaves the store)."""
        if not _NAME.match(location) or location.endswith(".part"):
            raise ValueError(f"not an image location: {location!r}")
        return Path(self.root) / location

    @staticmethod
    def location_for(image_id: UUID, disk_format: str) -> str:
        if disk_format not in DISK_FORMATS:
            raise ValueError(f"unknown disk format {disk_format!r}")
        return f"{image_id}.{disk_format}"

    def file(self, location: str, disk_format: str) -> ImageFile:
        """What the store holds at ``location`` (FileNotFoundError if nothing)."""
        return ImageFile(location=location, disk_format=disk_format,
                         size_bytes=self.path(location).stat().st_size)

    def exists(self, location: str) -> bool:
        return self.path(location).is_file()

    @contextmanager
    def writing(self, location: str) -> Iterator[Path]:
        """A temporary path to write the file of ``location`` to; renamed into place
        when the block ends, removed if it raises."""
        final = self.path(location)
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        part.unlink(missing_ok=True)
        try:
            yield part
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)

    def remove(self, location: str) -> None:
        """Delete the file; quietly if it is not there."""
        self.path(location).unlink(missing_ok=True)
