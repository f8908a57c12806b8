"""RamFilter: enough free (overcommitted) memory for the flavor."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class RamFilter(HostFilter):
    """Keep hosts whose ``floor(total_ram_mb * ram_ratio) - used_ram_mb`` fits the flavor."""

    name = "RamFilter"

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        return host.free_ram_mb >= req.ram_mb

    def select(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[HostState]:
        need = req.ram_mb
        return [h for h in hosts if h.usable_ram_mb - h.used_ram_mb >= need]

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        largest = max(h.free_ram_mb for h in hosts)
        return f"needs {req.ram_mb} MB RAM; largest free {largest} MB"
