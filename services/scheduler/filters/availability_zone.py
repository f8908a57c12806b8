"""AvailabilityZoneFilter: the zone the user asked for, if any."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class AvailabilityZoneFilter(HostFilter):
    """Keep hosts in the requested zone; with no zone requested, keep every host."""

    name = "AvailabilityZoneFilter"

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        return req.availability_zone is None or host.availability_zone == req.availability_zone

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        return f"availability zone '{req.availability_zone}' has no host up"
