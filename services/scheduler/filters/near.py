"""NearFilter: the availability zone of the server named in ``near`` (section 4.4.10)."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class NearFilter(HostFilter):
    """Keep hosts in the same availability zone as the ``near`` server.

    Without the hint, or when its server cannot be found, every host passes
    (``PlacementRequest.near_placement``: the hint is a preference). Among the
    hosts kept, ``NearWeigher`` prefers the server's own host.
    """

    name = "NearFilter"

    def applies(self, req: PlacementRequest) -> bool:
        return req.near_placement is not None

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        placement = req.near_placement
        return placement is None or placement.availability_zone == host.availability_zone

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        placement = req.near_placement
        assert placement is not None  # without a server to be near, every host passes
        return (f"server {req.near} is in availability zone '{placement.availability_zone}', "
                "where no host can take this server")
