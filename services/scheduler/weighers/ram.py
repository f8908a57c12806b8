"""RamWeigher: more free RAM weighs more, which spreads servers over the hosts."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest
from services.scheduler.weighers.base import HostWeigher


class RamWeigher(HostWeigher):
    """Free RAM in MB. A negative multiplier turns spreading into stacking."""

    name = "RamWeigher"

    def weigh(self, host: HostState, req: PlacementRequest) -> float:
        return float(host.free_ram_mb)

    def weigh_all(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[float]:
        return [float(h.usable_ram_mb - h.used_ram_mb) for h in hosts]
