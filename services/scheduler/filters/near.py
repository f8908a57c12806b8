"""NearFilter: the availability zone of the server named in ``near`` (section 4.4.10)."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.filters.hint_words import not_found
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class NearFilter(HostFilter):
    """Keep hosts in the same availability zone as the ``near`` server.

    Without the hint every host passes; a ``near`` server that cannot be found
    leaves no host. Among the hosts kept, ``NearWeigher`` prefers the server's
    own host.
    """

    name = "NearFilter"

    def applies(self, req: PlacementRequest) -> bool:
        return bool(req.near)

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        near = req.near
        if near is None:
            return True
        placement = req.placements.get(near)
        return placement is not None and placement.availability_zone == host.availability_zone

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        near = req.near
        assert near is not None  # without the hint every host passes
        placement = req.placements.get(near)
        if placement is None:
            return not_found([near])
        return (f"server {near} is in availability zone '{placement.availability_zone}', "
                "where no host can take this server")
