"""The filter interface and the pipeline that runs filters in order.

A filter keeps or drops one host for one request; :func:`run_filters` applies
them in order, records how many hosts each one left, and stops at the first
that leaves none, so the fault of the server can name it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import ClassVar

import msgspec

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class HostFilter(abc.ABC):
    """Keeps the hosts that can take the request. One class per file."""

    name: ClassVar[str]
    """Name shown in logs and in a server's fault, Nova style (``RamFilter``)."""

    def applies(self, req: PlacementRequest) -> bool:
        """Whether the filter has anything to check for ``req``; one that does not
        is skipped and leaves no step in the trail (a hint filter without its hint)."""
        return True

    def select(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[HostState]:
        """The hosts that pass, in order. A filter run over every host of a large
        cloud for every build may do it in one comprehension (no call per host)."""
        return [h for h in hosts if self.passes(h, req)]

    @abc.abstractmethod
    def passes(self, host: HostState, req: PlacementRequest) -> bool:
        """True when ``host`` may take ``req``. Pure: no I/O, no state kept."""

    def explain(self, hosts: Sequence[HostState], req: PlacementRequest) -> str:
        """Why none of ``hosts`` (all those this filter saw) passed; shown to users."""
        return f"{len(hosts)} host(s) did not pass"


class FilterStep(msgspec.Struct, frozen=True, kw_only=True):
    """One filter's effect: hosts it saw and hosts it kept."""

    name: str
    before: int
    after: int


class FilterOutcome(msgspec.Struct, frozen=True, kw_only=True):
    hosts: list[HostState]
    """The hosts that passed every filter, in their input order."""
    steps: list[FilterStep]
    """One entry per filter that ran, in order."""
    why_none: str | None = None
    """When no host passed: which filter removed the last ones and why."""

    def trail(self) -> str:
        """``AvailabilityZoneFilter 3->2, RamFilter 2->0`` for the logs and fault details."""
        return ", ".join(f"{s.name} {s.before}->{s.after}" for s in self.steps)


def run_filters(filters: Iterable[HostFilter], hosts: Sequence[HostState],
                req: PlacementRequest) -> FilterOutcome:
    """Apply ``filters`` in order; stop at the first that leaves no host."""
    current = list(hosts)
    steps: list[FilterStep] = []
    for flt in filters:
        if not flt.applies(req):
            continue
        kept = flt.select(current, req)
        steps.append(FilterStep(name=flt.name, before=len(current), after=len(kept)))
        if not kept:
            why = f"Filter {flt.name} returned 0 hosts ({flt.explain(current, req)})"
            return FilterOutcome(hosts=[], steps=steps, why_none=why)
        current = kept
    return FilterOutcome(hosts=current, steps=steps)
