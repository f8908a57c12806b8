"""SameHostFilter: the host every server named in ``same_host`` runs on (section 4.4.10)."""

from __future__ import annotations

from collections.abc import Sequence

from services.scheduler.filters.base import HostFilter
from services.scheduler.filters.hint_words import not_found, servers_phrase
from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class SameHostFilter(HostFilter):
    """Keep only a host that runs every server of the ``same_host`` hint.

    Without the hint every host passes. A named server that cannot be found
    (another project's, deleted, not placed yet) leaves no host: the hint
    cannot be met, and the fault says so.
    """

    name = "SameHostFilter"

    def applies(self, req: PlacementRequest) -> bool:
        return bool(req.same_host)

    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        wanted = req.same_host
        if not wanted:
            return True
        placements = req.placements
        return all(sid in placements and placements[sid].host == host.host for sid in wanted)

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        wanted = req.same_host
        missing = req.missing(wanted)
        if missing:
            return not_found(missing)
        if len({req.placements[sid].host for sid in wanted}) > 1:
            return f"{servers_phrase(wanted)} are on different hosts"
        if len(wanted) == 1:
            return f"{servers_phrase(wanted)} is on a host that cannot take this server"
        return f"{servers_phrase(wanted)} are on a host that cannot take this server"
