"""The scheduler's view of the compute hosts: read in one query, kept a moment.

Reading every host's row for each build cost more than the rest of the
decision at a thousand hosts, so :class:`HostCache` keeps the view for
``host_refresh_s`` and counts this process's own claims into it as they
succeed (as Nova's HostState consumes a request). It may go stale only in ways
the claim re-checks in the database: room (another scheduler's claims), and,
since the scheduler claims with ``live_within_s``, a host disabled or gone
silent meanwhile. A claim refused on a cached view makes the next build read
afresh, and the build retries once on a fresh view before it gives up
(``build.BuildScheduler._place``). A build whose scheduler hints name other
servers also reads where those live, in one more query (:func:`locate_servers`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import msgspec

from services.scheduler.request import ServerPlacement
from shared.db import hosts as hosts_db
from shared.db.hosts import HostState

__all__ = ["HostCache", "HostSnapshot", "HostState", "ServerPlacement", "locate_servers", "snapshot"]


class HostSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The hosts that may take servers, and why the others may not."""

    live: list[HostState]
    """Enabled hosts with a recent heartbeat, by name."""
    disabled: int = 0
    """Hosts an operator took out of scheduling."""
    down: int = 0
    """Enabled hosts whose heartbeat is older than ``service_down_time_s``."""
    in_grace: int = 0
    """Of those, hosts not taken for dead yet: the database or this scheduler came
    back less than ``service_down_time_s`` ago (``shared.db.hosts``)."""
    service_down_time_s: float = 30.0


async def snapshot(conn: asyncpg.Connection, service_down_time_s: float, *,
                   healthy_for_s: float = float("inf")) -> HostSnapshot:
    """Read every host once; ``live`` is what :func:`hosts_db.live_hosts` returns."""
    every = await hosts_db.all_hosts(conn, service_down_time_s, healthy_for_s=healthy_for_s)
    live = [h for h in every if h.alive and not h.disabled]
    silent = [h for h in every if not h.alive and not h.disabled]
    return HostSnapshot(live=live, disabled=sum(h.disabled for h in every), down=len(silent),
                        in_grace=sum(not h.down for h in silent),
                        service_down_time_s=service_down_time_s)


class HostCache:
    """:func:`snapshot`, reused for ``refresh_s`` seconds and kept current with
    this process's claims. One instance per scheduler process."""

    def __init__(self, service_down_time_s: float, refresh_s: float) -> None:
        self._down_s = service_down_time_s
        self._refresh_s = refresh_s
        self._snap: HostSnapshot | None = None
        self._read_at = 0.0
        self._by_name: dict[str, HostState] = {}
        self._reading = asyncio.Lock()

    async def get(self, conn: asyncpg.Connection, *, healthy_for_s: float = float("inf"),
                  fresh: bool = False) -> tuple[HostSnapshot, bool]:
        """The view, and whether it was read just now (``fresh`` forces a read)."""
        if not fresh and self._valid():
            assert self._snap is not None
            return self._snap, False
        async with self._reading:  # builds arriving together share one read
            if not fresh and self._valid():
                assert self._snap is not None
                return self._snap, False
            snap = await snapshot(conn, self._down_s, healthy_for_s=healthy_for_s)
            self._snap, self._read_at = snap, time.monotonic()
            self._by_name = {h.host: h for h in snap.live}
            return snap, True

    def consume(self, host: str, ram_mb: int, disk_gb: int, vcpus: int) -> None:
        """Count a claim this process is making on ``host`` into the view (negative
        amounts give back one that failed)."""
        if (state := self._by_name.get(host)) is not None:
            state.used_ram_mb += ram_mb
            state.used_disk_gb += disk_gb
            state.used_vcpus += vcpus

    def invalidate(self) -> None:
        """The view proved wrong (a claim was refused): read afresh next time."""
        self._read_at = 0.0

    def _valid(self) -> bool:
        return self._snap is not None and time.monotonic() - self._read_at < self._refresh_s


# Only the project's own servers: a hint must not reveal (or depend on) where
# another project's servers run. A server counts wherever it has a host until it
# is deleted, whatever its state, as Nova counted a host's instances. The zone
# is the host's current one, the server's recorded one if the host is unknown.
_LOCATE = """
SELECT s.id, s.host, COALESCE(h.availability_zone, s.availability_zone) AS availability_zone
  FROM servers s LEFT JOIN compute_hosts h ON h.host = s.host
 WHERE s.id = ANY($1::uuid[]) AND s.project_id = $2
   AND s.deleted_at IS NULL AND s.vm_state <> 'deleted' AND s.host IS NOT NULL"""


async def locate_servers(conn: asyncpg.Connection, project_id: str,
                         server_ids: Sequence[str]) -> dict[str, ServerPlacement]:
    """Where the given servers of ``project_id`` live, by id (as given, canonical form).

    Ids that are not UUIDs, servers of other projects, deleted servers and
    servers not placed on a host yet are left out.
    """
    ids: list[UUID] = []
    for text in server_ids:
        try:
            ids.append(UUID(text))
        except ValueError:
            continue
    if not ids:
        return {}
    rows = await conn.fetch(_LOCATE, ids, project_id)
    return {str(r["id"]): ServerPlacement(host=r["host"],
                                          availability_zone=r["availability_zone"])
            for r in rows}
