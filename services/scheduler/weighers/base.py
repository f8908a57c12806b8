"""The weigher interface and the ordering of the hosts that passed the filters.

Each weigher scores every host; the scores of one weigher are scaled to 0..1
across the hosts (so a weigher in MB and one in VCPUs count alike), multiplied
by the weigher's multiplier and summed. Highest total first; ties by host name,
so the order is reproducible.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Sequence

from services.scheduler.host_state import HostState
from services.scheduler.request import PlacementRequest


class HostWeigher(abc.ABC):
    """Scores hosts for a request; higher is better. One class per file."""

    name: str

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def applies(self, req: PlacementRequest) -> bool:
        """Whether the weigher can tell hosts apart for ``req``; one that cannot
        (it would score every host alike: 0 once scaled) is skipped."""
        return self.multiplier != 0

    @abc.abstractmethod
    def weigh(self, host: HostState, req: PlacementRequest) -> float:
        """The raw score of ``host``; pure, no I/O."""

    def weigh_all(self, hosts: Sequence[HostState], req: PlacementRequest) -> list[float]:
        """The raw scores of ``hosts``, in order (see ``filters.HostFilter.select``)."""
        return [self.weigh(h, req) for h in hosts]


def _normalized(raw: list[float]) -> list[float]:
    lo, hi = min(raw), max(raw)
    if hi == lo:
        return [0.0] * len(raw)
    return [(v - lo) / (hi - lo) for v in raw]


def order_hosts(weighers: Sequence[HostWeigher], hosts: Sequence[HostState],
                req: PlacementRequest, *, subset_size: int = 1,
                rng: random.Random | None = None) -> list[HostState]:
    """``hosts`` best first; the first is drawn at random from the best ``subset_size``.

    The rest keep their weighed order, so a claim that fails on the first host
    moves on to the next best.
    """
    if not hosts:
        return []
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        if not weigher.applies(req):
            continue
        scores = _normalized(weigher.weigh_all(hosts, req))
        m = weigher.multiplier
        totals = [t + m * s for t, s in zip(totals, scores)]
    # Ties by host name: a stable sort of hosts in name order (they come so
    # from the database) keeps it; hosts given otherwise are put in it first.
    names = [h.host for h in hosts]
    if any(a > b for a, b in zip(names, names[1:])):
        order = sorted(range(len(hosts)), key=names.__getitem__)
        hosts, totals = [hosts[i] for i in order], [totals[i] for i in order]
    ranked = [hosts[i] for i in sorted(range(len(hosts)), key=totals.__getitem__, reverse=True)]
    if subset_size > 1:
        pick = (rng or random).randrange(min(subset_size, len(ranked)))
        ranked.insert(0, ranked.pop(pick))
    return ranked
