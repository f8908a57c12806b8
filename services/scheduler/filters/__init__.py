"""Host filters, one class per module, and the order the scheduler runs them in.

Cheap and decisive filters come first: the first filter that leaves no host is
the one a server's fault names, so the zone is checked before the resources
(asking for a zone with no host says so, not "not enough RAM"). Scheduler-hint
filters (issue-3) go after the resource filters; they read ``req.hints``.
"""

from __future__ import annotations

from services.scheduler.filters.availability_zone import AvailabilityZoneFilter
from services.scheduler.filters.base import FilterOutcome, FilterStep, HostFilter, run_filters
from services.scheduler.filters.disk import DiskFilter
from services.scheduler.filters.excluded_hosts import ExcludedHostsFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.filters.vcpus import VcpuFilter


def default_filters() -> list[HostFilter]:
    """The filters every build goes through, in order."""
    return [ExcludedHostsFilter(), AvailabilityZoneFilter(), RamFilter(), DiskFilter(), VcpuFilter()]


__all__ = [
    "AvailabilityZoneFilter", "DiskFilter", "ExcludedHostsFilter", "FilterOutcome", "FilterStep",
    "HostFilter", "RamFilter", "VcpuFilter", "default_filters", "run_filters",
]
