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
    location: str | None = None
    """The image's file, a name inside the image store (``shared.image_store``);
    None for an image with no bits (a driver that needs them refuses it)."""
    disk_format: str = "raw"
    """``raw`` or ``qcow2``: how the file's bytes are laid out."""


class Port(msgspec.Struct, frozen=True, kw_only=True):
    """One network interface of a server: a fixed address and a MAC on a network."""

    id: UUID
    network_id: UUID
    network_name: str
    address: str
    mac: str
    version: int = 4
    cidr: str | None = None
    """The subnet the address is on (``10.0.4.0/22``): the guest's netmask."""
    gateway: str | None = None
    """The subnet's gateway, the guest's default route; None for none."""
    mtu: int = 1500
    """The largest frame the network carries; the guest's NIC is set to it."""
    bridge: str | None = None
    """The host's Linux bridge the NIC plugs into; None: the hypervisor's own
    user-mode network (the guest reaches out, nothing reaches in)."""
