"""DifferentHostFilter: no host that runs a server named in ``different_host`` (section 4.4.10)."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.filters.hint_words import not_found, servers_phrase
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class DifferentHostFilter(HostFilter):
    """Drop every host that runs one of the servers of the ``different_host`` hint.

    Without the hint every host passes. A named server that cannot be found
    (another project's, deleted, not placed yet) leaves no host either: Nova
    let such a name pass silently, but then a mistyped id or a server still
    scheduling would quietly give no separation at all, so the user is told.
    """

    name = "DifferentHostFilter"

    def applies(self, req: PlacementRequest) -> bool:
        return bool(req.different_host)

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        avoid = req.different_host
        if not avoid:
            return True
        if req.missing(avoid):
            return False
        return all(req.placements[sid].host != host.host for sid in avoid)

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        avoid = req.different_host
        missing = req.missing(avoid)
        if missing:
            return not_found(missing)
        return (f"every host that could take this server runs one of {servers_phrase(avoid)}")
