"""Views of compute hosts as Nova's operator extensions showed them (Icehouse/Juno):
the services of os-services and os-availability-zone/detail, the hypervisors of
os-hypervisors.

Each compute agent is one ``nova-compute`` service and one hypervisor, both
named by the host's id (Nova had a service row and a compute node row per
host; nothing here needs them to differ). Nimbus records heartbeats only for
compute agents, so only they are listed: no control-service rows are made up.

State words, from ``shared.db.hosts`` (the one rule for a host's heartbeat):
``up``/``available`` when the host's heartbeat is recent (``alive``);
``enabled``/``active`` unless an operator disabled it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.api.views.availability_zones import zones
from services.api.views.links import microtime
from shared.db.hosts import HostState

COMPUTE_BINARY = "nova-compute"


def _status(h: HostState) -> str:
    return "disabled" if h.disabled else "enabled"


def _state(h: HostState) -> str:
    return "up" if h.alive else "down"


def service(h: HostState) -> dict[str, Any]:
    """One os-services entry (Juno's, with the id and disabled_reason)."""
    return {"id": h.id, "binary": COMPUTE_BINARY, "host": h.host, "zone": h.availability_zone,
            "status": _status(h), "state": _state(h),
            "updated_at": microtime(h.last_heartbeat), "disabled_reason": h.disabled_reason}


def zones_detail(hosts: Iterable[HostState]) -> list[dict[str, Any]]:
    """The zones of ``views.availability_zones.zones`` (same order and availability),
    each with its hosts and their services."""
    every = list(hosts)
    out = zones(every)
    for entry in out:
        entry["hosts"] = {
            h.host: {COMPUTE_BINARY: {"available": h.alive, "active": not h.disabled,
                                      "updated_at": microtime(h.last_heartbeat)}}
            for h in every if h.availability_zone == entry["zoneName"]}
    return out


def hypervisor_summary(h: HostState) -> dict[str, Any]:
    return {"id": h.id, "hypervisor_hostname": h.host, "state": _state(h), "status": _status(h)}


def hypervisor_detail(h: HostState, running: tuple[int, int]) -> dict[str, Any]:
    """A hypervisor as Nova's detail showed it. Totals are the host's physical ones
    (overcommit ratios apply to what the scheduler lets claims take, not here);
    used amounts are what claims hold. Nimbus records no host IP, CPU model or
    hypervisor version: ``host_ip`` and ``hypervisor_version`` are null and
    ``cpu_info`` an empty JSON object (clients parse it as JSON)."""
    running_vms, workload = running
    return {
        **hypervisor_summary(h),
        "hypervisor_type": h.hypervisor_type,
        "hypervisor_version": None,
        "host_ip": None,
        "cpu_info": "{}",
        "vcpus": h.total_vcpus,
        "vcpus_used": h.used_vcpus,
        "memory_mb": h.total_ram_mb,
        "memory_mb_used": h.used_ram_mb,
        "free_ram_mb": h.total_ram_mb - h.used_ram_mb,
        "local_gb": h.total_disk_gb,
        "local_gb_used": h.used_disk_gb,
        "free_disk_gb": h.total_disk_gb - h.used_disk_gb,
        # Claims take whole disks, so the least ever available is what is free.
        "disk_available_least": h.total_disk_gb - h.used_disk_gb,
        "running_vms": running_vms,
        "current_workload": workload,
        "service": {"host": h.host, "id": h.id, "disabled_reason": h.disabled_reason},
    }


_SUMMED = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb", "local_gb",
           "local_gb_used", "free_disk_gb", "disk_available_least", "running_vms",
           "current_workload")


def statistics(details: list[dict[str, Any]]) -> dict[str, int]:
    """Nova's hypervisor_statistics: the count and the sums over every hypervisor."""
    return {"count": len(details), **{key: sum(d[key] for d in details) for key in _SUMMED}}
