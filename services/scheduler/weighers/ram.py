"""RamWeigher: more free RAM weighs more, which spreads servers over the hosts."""

from __future__ import annotations

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest
from services.scheduler.weighers.base import HostWeigher


class RamWeigher(HostWeigher):
    """Free RAM in MB. A negative multiplier turns spreading into stacking."""

    name = "RamWeigher"

    def weigh(self, host: HostState, req: PlacementRequest) -> float:
        return float(host.free_ram_mb)
