"""What a build asks of a host, as the filters and weighers see it."""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.scheduler import ScheduleBuild


class PlacementRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One server to place: its needs, the zone it asked for and its hints.

    Filters receive the whole request, so a filter for a scheduler hint reads
    ``hints`` without the pipeline changing.
    """

    server_id: UUID
    flavor: FlavorSpec
    image: ImageSpec | None = None
    availability_zone: str | None = None
    hints: dict[str, object] = {}
    excluded_hosts: tuple[str, ...] = ()

    @property
    def ram_mb(self) -> int:
        return self.flavor.ram_mb

    @property
    def disk_gb(self) -> int:
        """Root, ephemeral and swap disk together, in whole GB (swap rounded up)."""
        return self.flavor.total_disk_gb

    @property
    def vcpus(self) -> int:
        return self.flavor.vcpus

    @classmethod
    def from_message(cls, msg: ScheduleBuild) -> PlacementRequest:
        return cls(server_id=msg.build.server_id, flavor=msg.build.flavor, image=msg.build.image,
                   availability_zone=msg.availability_zone or None, hints=dict(msg.hints),
                   excluded_hosts=tuple(msg.excluded_hosts))
