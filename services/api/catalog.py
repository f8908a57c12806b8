"""The seeded catalog: the flavors of spec section 2.1.2 and the public images.

``bootstrap_catalog`` is idempotent: it inserts what is missing and leaves rows
that exist alone, so running ``manage bootstrap`` twice changes nothing.

Every seeded image has a file in the image store (``shared.image_store``):

* the contract's three images (Ubuntu, CirrOS, Debian) keep their ids, names and
  sizes; their files are sparse raw disks of that size holding nothing (the fake
  driver boots anything; on the libvirt driver they find no boot sector), since
  nothing may be downloaded from outside the package registries;
* **Nimbus Tiny Linux** is a real bootable disk the project builds itself from
  Debian's packages (``deploy.guest_image``: a Debian kernel and a busybox
  initramfs), seeded when its built file is given (``NIMBUS_IMAGES_SEED_TINY``,
  set by ``make up`` and the tests); its size is the file's.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path
from uuid import UUID

import asyncpg
import structlog

from shared.image_store import ImageStore

log = structlog.get_logger(__name__)

# id, name, ram MB, disk GB, ephemeral GB, vcpus (swap empty, rxtx_factor 1.0)
FLAVORS: tuple[tuple[str, str, int, int, int, int], ...] = (
    ("100", "standard.xsmall", 1024, 10, 10, 1),
    ("101", "standard.small", 2048, 30, 10, 2),
    ("102", "standard.medium", 4096, 30, 50, 2),
    ("103", "standard.large", 8192, 30, 130, 4),
    ("104", "standard.xlarge", 15360, 30, 270, 4),
    ("105", "standard.2xlarge", 30720, 30, 470, 8),
    ("110", "standard.4xlarge", 61440, 30, 870, 12),
    ("114", "standard.8xlarge", 122880, 30, 1770, 16),
    ("203", "highmem.large", 16384, 30, 130, 4),
    ("204", "highmem.xlarge", 30720, 30, 270, 4),
    ("205", "highmem.2xlarge", 61440, 30, 540, 8),
)

UBUNTU_IMAGE_ID = UUID("8672f4c6-e33d-46f5-b6d8-ebbeba12fa02")
CIRROS_IMAGE_ID = UUID("2f1e4f8e-4f5e-4c53-9a59-3b3c3c6f0c11")
DEBIAN_IMAGE_ID = UUID("7a1bd1a6-0d8c-4c84-8f0f-1e6a3d2b9c4e")

# id, name, min disk GB, min RAM MB, size bytes, metadata
IMAGES: tuple[tuple[UUID, str, int, int, int, dict[str, str]], ...] = (
    (UBUNTU_IMAGE_ID, "Ubuntu Server 12.04.4 LTS (amd64 20140408) - Partner Image", 8, 0, 260178432,
     {"architecture": "x86_64", "os_type": "linux-ext4", "os_version": "12.04.4_LTS",
      "com.hp__1__os_distro": "com.ubuntu", "com.hp__1__image_type": "disk",
      "com.hp__1__image_lifecycle": "active", "com.hp__1__bootable_volume": "true"}),
    (CIRROS_IMAGE_ID, "CirrOS 0.3.1 (x86_64)", 1, 64, 13147648,
     {"architecture": "x86_64", "os_type": "linux", "os_distro": "cirros",
      "os_version": "0.3.1"}),
    (DEBIAN_IMAGE_ID, "Debian Wheezy 7.0.0 64-bit 20130529 (b)", 10, 512, 524288000,
     {"architecture": "x86_64", "os_type": "linux-ext4", "os_distro": "debian",
      "os_version": "7.0.0", "com.hp__1__bootable_volume": "true"}),
)

_INSERT_FLAVOR = """
INSERT INTO flavors (id, name, ram_mb, disk_gb, ephemeral_gb, vcpus, swap_mb, rxtx_factor)
VALUES ($1, $2, $3, $4, $5, $6, 0, 1.0) ON CONFLICT (id) DO NOTHING"""

TINY_IMAGE_ID = UUID("5e0b1d2c-7a41-4c8e-9f3a-1b7d6c2e9a10")
TINY_IMAGE_NAME = "Nimbus Tiny Linux (Debian kernel, busybox)"
TINY_IMAGE_METADATA = {"architecture": "x86_64", "os_type": "linux", "os_distro": "nimbus-tiny",
                       "hw_disk_bus": "virtio", "com.hp__1__image_type": "disk"}

# A seeded image's file: a fresh build of the tiny image replaces the old one.
_INSERT_IMAGE = """
INSERT INTO images AS i (id, name, status, visibility, min_disk_gb, min_ram_mb, size_bytes,
                         metadata, location, disk_format, created_at, updated_at)
VALUES ($1, $2, 'ACTIVE', 'public', $3, $4, $5, $6, $7, $8, now(), now())
ON CONFLICT (id) DO UPDATE SET location = EXCLUDED.location, disk_format = EXCLUDED.disk_format,
                               size_bytes = EXCLUDED.size_bytes, updated_at = now()
 WHERE i.location IS DISTINCT FROM EXCLUDED.location
    OR i.size_bytes IS DISTINCT FROM EXCLUDED.size_bytes"""


def _placeholder(store: ImageStore, image_id: UUID, size: int) -> str:
    """A sparse raw disk of ``size`` bytes (no blocks used) as the image's file."""
    location = store.location_for(image_id, "raw")
    path = store.path(location)
    if not path.is_file() or path.stat().st_size != size:
        with store.writing(location) as part, part.open("wb") as fh:
            fh.truncate(size)
    return location


def _tiny(store: ImageStore, built: Path) -> str:
    """The built tiny image copied into the store (again when the build changed)."""
    location = store.location_for(TINY_IMAGE_ID, "qcow2")
    path = store.path(location)
    if not path.is_file() or not filecmp.cmp(path, built, shallow=False):
        with store.writing(location) as part:
            shutil.copyfile(built, part)
    return location


async def bootstrap_catalog(conn: asyncpg.Connection, store: ImageStore,
                            tiny_image: Path | None = None) -> None:
    """Seed the flavors and the images, writing the images' files into ``store``."""
    rows = []
    for image_id, name, min_disk, min_ram, size, meta in IMAGES:
        rows.append((image_id, name, min_disk, min_ram, size, meta,
                     _placeholder(store, image_id, size), "raw"))
    if tiny_image is not None:
        location = _tiny(store, tiny_image)
        rows.append((TINY_IMAGE_ID, TINY_IMAGE_NAME, 1, 64, store.path(location).stat().st_size,
                     TINY_IMAGE_METADATA, location, "qcow2"))
    else:
        log.info("catalog.tiny_image_skipped", reason="no built image given")
    async with conn.transaction():
        await conn.executemany(_INSERT_FLAVOR, FLAVORS)
        await conn.executemany(_INSERT_IMAGE, rows)
