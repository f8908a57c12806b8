"""The seeded catalog: the flavors of spec section 2.1.2 and the public images.

``bootstrap_catalog`` is idempotent: it inserts what is missing and leaves rows
that exist alone, so running ``manage bootstrap`` twice changes nothing.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

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

_INSERT_IMAGE = """
INSERT INTO images (id, name, status, visibility, min_disk_gb, min_ram_mb, size_bytes, metadata,
                    created_at, updated_at)
VALUES ($1, $2, 'ACTIVE', 'public', $3, $4, $5, $6, now(), now()) ON CONFLICT (id) DO NOTHING"""


async def bootstrap_catalog(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.executemany(_INSERT_FLAVOR, FLAVORS)
        await conn.executemany(_INSERT_IMAGE, IMAGES)
