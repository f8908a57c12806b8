"""ExcludedHostsFilter: hosts the request must not go to (e.g. ones a build already failed on)."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class ExcludedHostsFilter(HostFilter):
    """Drop the hosts named in ``excluded_hosts`` (Nova's RetryFilter)."""

    name = "ExcludedHostsFilter"

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        return host.host not in req.excluded_hosts

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        return "every host that is up was excluded: " + ", ".join(sorted(h.host for h in hosts))
