"""The scheduler's view of the compute hosts, read fresh for every request.

There is no cache to go stale: each build reads the hosts' rows (a few hundred
at most) in one query, and the claim re-checks capacity in the database anyway.
"""

from __future__ import annotations

import asyncpg
import msgspec

from shared.db import hosts as hosts_db
from shared.db.hosts import HostState

__all__ = ["HostState", "HostSnapshot", "snapshot"]


class HostSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The hosts that may take servers, and why the others may not."""

    live: list[HostState]
    """Enabled hosts with a recent heartbeat, by name."""
    disabled: int = 0
    """Hosts an operator took out of scheduling."""
    down: int = 0
    """Enabled hosts whose heartbeat is older than ``service_down_time_s``."""
    service_down_time_s: float = 30.0


async def snapshot(conn: asyncpg.Connection, service_down_time_s: float) -> HostSnapshot:
    """Read every host once; ``live`` is what :func:`hosts_db.live_hosts` returns."""
    every = await hosts_db.all_hosts(conn, service_down_time_s)
    live = [h for h in every if h.alive and not h.disabled]
    return HostSnapshot(live=live, disabled=sum(h.disabled for h in every),
                        down=sum(not h.alive and not h.disabled for h in every),
                        service_down_time_s=service_down_time_s)
