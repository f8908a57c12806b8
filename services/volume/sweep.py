"""The sweep that keeps volumes and snapshots from staying transient forever.

Every ``sweep_interval_s`` the volume service looks for work that can no longer
finish, and ends it as the status table says (``shared.volume_states``), with a
reason the user reads:

* a volume attaching or detaching to a server whose compute host counts as
  down (``shared.db.hosts``) is released at once. An attach goes back to
  ``available`` (ATTACH's failed status: the attach was never confirmed, and
  the agent, when it comes back, finds the volume no longer attaching and does
  nothing). A detach goes back to ``in-use`` (DETACH's failed status), not
  ``available``: a silent agent does not mean a stopped guest (guests outlive
  their agent), and a disk still held by a guest must never be handed to
  another server. The user detaches again once the host is back, or deletes
  the server: a deleted server's volumes are freed
  (``shared.db.servers.mark_deleted``), on a dead host too;
* a volume creating, attaching, detaching or deleting, or a snapshot creating or
  deleting, whose status has not moved for ``transient_timeout_s``: its
  message was lost (dead-lettered, a worker gone with it) or its work hangs.
  Creates end ``error``, attaches ``available``, detaches ``in-use``, deletes
  ``error_deleting`` (from where the user may delete again);
* ``.part`` files that creates which died half-way left in the store and
  nobody has written to for ``transient_timeout_s`` are removed.

Nothing is judged from a stale view: hosts are down only once this service has
reached the database for a whole ``service_down_time_s``, and the timeouts count
only once it has for a whole ``transient_timeout_s`` (``OutageClock``): work
that waited out an outage in an outbox is not failed for having waited. Every
change is a guarded update naming the status (and the request, or the server)
the sweep saw, so work that finishes meanwhile is left alone and several
volume services may sweep at once.
"""

from __future__ import annotations

import asyncpg
import structlog

from services.volume.backends import VolumeBackend
from services.volume.settings import VolumeSettings
from shared.db import hosts, volumes
from shared.retry import OutageClock
from shared.volume_states import (
    ATTACH,
    DETACH,
    SNAPSHOT_CREATE,
    SNAPSHOT_TRANSITIONS,
    VOLUME_TRANSITIONS,
    VolumeTransition,
)

log = structlog.get_logger(__name__)


class VolumeSweeper:
    def __init__(self, pool: asyncpg.Pool, settings: VolumeSettings,
                 backend: VolumeBackend | None = None, *,
                 outages: OutageClock | None = None) -> None:
        self._pool = pool
        self._settings = settings
        self._backend = backend
        self._outages = outages

    def _healthy_for(self) -> float:
        return self._outages.healthy_for() if self._outages is not None else float("inf")

    async def sweep(self) -> int:
        """End every volume and snapshot operation that can no longer finish; how
        many rows were ended."""
        s = self._settings
        dealt = 0
        async with self._pool.acquire() as conn:
            down = await hosts.down_hosts(conn, s.service_down_time_s,
                                          healthy_for_s=self._healthy_for())
            if down:
                dealt += await self._release_on(conn, down)
            if self._healthy_for() >= s.transient_timeout_s:
                dealt += await self._fail_stuck_volumes(conn)
                dealt += await self._fail_stuck_snapshots(conn)
        if self._backend is not None:
            await self._backend.remove_leftovers(s.transient_timeout_s)
        return dealt

    async def _release_on(self, conn: asyncpg.Connection, down: list[str]) -> int:
        down_s = self._settings.service_down_time_s
        dealt = 0
        for row in await volumes.moving_on_hosts(conn, down):
            t = VOLUME_TRANSITIONS[row["status"]]
            reason = (f"The {t.name} of volume {row['id']} to server {row['server_id']} did "
                      f"not complete: compute host {row['server_host']} stopped responding "
                      f"(no heartbeat for {down_s:g} s).")
            dealt += await self._end_volume(conn, row, t, reason)
        return dealt

    async def _fail_stuck_volumes(self, conn: asyncpg.Connection) -> int:
        timeout_s = self._settings.transient_timeout_s
        dealt = 0
        for row in await volumes.stuck(conn, timeout_s):
            t = VOLUME_TRANSITIONS[row["status"]]
            reason = f"The {t.name} of volume {row['id']} did not complete within {timeout_s:g} s."
            dealt += await self._end_volume(conn, row, t, reason)
        return dealt

    async def _end_volume(self, conn: asyncpg.Connection, row: asyncpg.Record,
                          t: VolumeTransition, reason: str) -> int:
        vid = row["id"]
        if t is ATTACH:
            ended = await volumes.end_attach(conn, vid, row["server_id"], failed=reason)
        elif t is DETACH:
            ended = await volumes.end_detach(conn, vid, row["server_id"], failed=reason)
        else:
            ended = await volumes.end(conn, vid, t, failed=reason,
                                      request_id=row["status_request_id"]) is not None
        if ended:
            log.warning("volume.swept", volume_id=str(vid), status=row["status"],
                        ended_as=t.failed, reason=reason)
        return int(ended)

    async def _fail_stuck_snapshots(self, conn: asyncpg.Connection) -> int:
        timeout_s = self._settings.transient_timeout_s
        dealt = 0
        for row in await volumes.stuck_snapshots(conn, timeout_s):
            t = SNAPSHOT_TRANSITIONS[row["status"]]
            what = "creation" if t is SNAPSHOT_CREATE else "delete"
            reason = (f"The {what} of snapshot {row['id']} of volume {row['volume_id']} did "
                      f"not complete within {timeout_s:g} s.")
            if await volumes.end_snapshot(conn, row["id"], t, failed=reason) is not None:
                log.warning("snapshot.swept", snapshot_id=str(row["id"]), status=row["status"],
                            ended_as=t.failed, reason=reason)
                dealt += 1
        return dealt
