"""VcpuFilter: enough free (overcommitted) virtual CPUs for the flavor."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class VcpuFilter(HostFilter):
    """Keep hosts whose ``floor(total_vcpus * cpu_ratio) - used_vcpus`` fits the flavor."""

    name = "VcpuFilter"

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        return host.free_vcpus >= req.vcpus

    def select(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[HostState]:
        need = req.vcpus
        return [h for h in hosts if h.usable_vcpus - h.used_vcpus >= need]

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        largest = max(h.free_vcpus for h in hosts)
        return f"needs {req.vcpus} VCPUs; largest free {largest}"
