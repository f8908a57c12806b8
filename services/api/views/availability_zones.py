"""Availability zone views (section 4.4.2.1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.db.hosts import HostState


def zone(name: str, available: bool) -> dict[str, Any]:
    # ``hosts`` is null in the summary, as in the spec's example (Nova fills it
    # only in the admin detail listing, which the spec does not have).
    return {"zoneName": name, "zoneState": {"available": available}, "hosts": None}


def zones(hosts: Iterable[HostState]) -> list[dict[str, Any]]:
    """Every zone with at least one compute host, available ones first, then by name.

    A zone is available when one of its hosts is enabled and heartbeated
    recently (``alive``); a zone whose hosts are all down or disabled is still
    listed, as not available (Nova listed zones of disabled services the same
    way), so users can tell an outage from a zone that does not exist.
    """
    state: dict[str, bool] = {}
    for h in hosts:
        state[h.availability_zone] = state.get(h.availability_zone, False) or (
            h.alive and not h.disabled)
    ordered = sorted(state.items(), key=lambda item: (not item[1], item[0]))
    return [zone(name, available) for name, available in ordered]
