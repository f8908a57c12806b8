"""DiskFilter: enough free (overcommitted) disk for root, ephemeral and swap."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class DiskFilter(HostFilter):
    """Keep hosts whose ``floor(total_disk_gb * disk_ratio) - used_disk_gb`` fits the flavor."""

    name = "DiskFilter"

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        return host.free_disk_gb >= req.disk_gb

    def select(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[HostState]:
        need = req.disk_gb
        return [h for h in hosts if h.usable_disk_gb - h.used_disk_gb >= need]

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        largest = max(h.free_disk_gb for h in hosts)
        return f"needs {req.disk_gb} GB disk; largest free {largest} GB"
