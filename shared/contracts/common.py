"""Value types that several services' messages share."""

from __future__ import annotations

from uuid import UUID

import msgspec


class FlavorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The resources a server asks of its host (a snapshot of its flavor)."""

    id: str
    name: str
    ram_mb: int
    disk_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    vcpus: int

    @property
    def total_disk_gb(self) -> int:
        return self.disk_gb + self.ephemeral_gb + (self.swap_mb + 1023) // 1024


class ImageSpec(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    min_disk_gb: int = 0
    min_ram_mb: int = 0
    size_bytes: int = 0


class Port(msgspec.Struct, frozen=True, kw_only=True):
    """One network interface of a server: a fixed address and a MAC on a network."""

    id: UUID
    network_id: UUID
    network_name: str
    address: str
    mac: str
    version: int = 4
