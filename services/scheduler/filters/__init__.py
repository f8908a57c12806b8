"""Host filters, one class per module, and the order the scheduler runs them in.

Cheap and decisive filters come first: the first filter that leaves no host is
the one a server's fault names, so the zone is checked before the resources
(asking for a zone with no host says so, not "not enough RAM"). The
scheduler-hint filters (section 4.4.10) go after the resource filters: a hint
that names a host without room then says that the named servers' host "cannot
take this server" rather than blaming RAM. They read ``req.same_host``,
``req.different_host`` and ``req.near``, resolved in ``req.placements``.
"""

from __future__ import annotations

from services.scheduler.filters.availability_zone import AvailabilityZoneFilter
from services.scheduler.filters.base import FilterOutcome, FilterStep, HostFilter, run_filters
from services.scheduler.filters.different_host import DifferentHostFilter
from services.scheduler.filters.disk import DiskFilter
from services.scheduler.filters.excluded_hosts import ExcludedHostsFilter
from services.scheduler.filters.near import NearFilter
from services.scheduler.filters.ram import RamFilter
from services.scheduler.filters.same_host import SameHostFilter
from services.scheduler.filters.vcpus import VcpuFilter


def default_filters() -> list[HostFilter]:
    """The filters every build goes through, in order."""
    return [ExcludedHostsFilter(), AvailabilityZoneFilter(), RamFilter(), DiskFilter(), VcpuFilter(),
            SameHostFilter(), DifferentHostFilter(), NearFilter()]


__all__ = [
    "AvailabilityZoneFilter", "DifferentHostFilter", "DiskFilter", "ExcludedHostsFilter",
    "FilterOutcome", "FilterStep", "HostFilter", "NearFilter", "RamFilter", "SameHostFilter",
    "VcpuFilter", "default_filters", "run_filters",
]
