"""NearWeigher: the ``near`` server's own host first, when it passed the filters."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest
from services.scheduler.weighers.base import HostWeigher


class NearWeigher(HostWeigher):
    """1 for the host the ``near`` server runs on, 0 for the others (and for all
    hosts without the hint or when its server cannot be found, which then
    changes nothing).

    ``NearFilter`` keeps the zone; this makes the server's own host win within
    it whenever that host can take the build. Its multiplier should outweigh
    the others' (scores are scaled to 0..1 per weigher), or free RAM elsewhere
    in the zone would win.
    """

    name = "NearWeigher"

    def applies(self, req: PlacementRequest) -> bool:
        return self.multiplier != 0 and req.near_placement is not None

    def weigh(self, host: HostState, req: PlacementRequest) -> float:
        placement = req.near_placement
        return 1.0 if placement is not None and placement.host == host.host else 0.0
