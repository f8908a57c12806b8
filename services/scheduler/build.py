"""Placing a new server: filter, weigh, claim, record the host, hand the build over.

The request message is acked only after :meth:`BuildScheduler.handle` returns,
so a scheduler that dies mid-way sees it again (here or in another process).
Every step is therefore safe to repeat:

* a server no longer in ``BUILD(scheduling)`` (deleted, in ERROR, or already
  taken up by its compute agent) is left alone;
* the claim and the recording of the host commit together, so a placed server
  always holds its claim and a claim always belongs to a placed server;
* a server already placed but still in ``BUILD(scheduling)`` had its build
  sent, or was about to when the scheduler died: the build is sent to that
  host again, which the agent drops if it already started it (its first step
  is a guarded move out of ``scheduling``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import msgspec
import structlog

from services.scheduler.filters import (
    FilterOutcome,
    HostFilter,
    default_filters,
    run_filters,
)
from services.scheduler.host_state import HostSnapshot, locate_servers, snapshot
from services.scheduler.no_valid_host import fault
from services.scheduler.request import PlacementRequest
from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers import HostWeigher, default_weighers, order_hosts
from shared.contracts.compute import BuildServer, ComputeClient
from shared.contracts.scheduler import ScheduleBuild, SchedulerMessage
from shared.db import actions
from shared.db import hosts as hosts_db
from shared.db import servers as servers_db
from shared.states import TaskState, VmState

log = structlog.get_logger(__name__)


class _ServerGone(Exception):
    """The server left BUILD(scheduling) between our read and our placement."""


class _NotScheduled(Exception):
    """Marks the schedule_instance event as failed; the fault is already recorded."""


class BuildScheduler:
    """The handler of the ``scheduler`` queue."""

    def __init__(self, pool: asyncpg.Pool, compute: ComputeClient, settings: SchedulerSettings,
                 *, filters: Sequence[HostFilter] | None = None,
                 weighers: Sequence[HostWeigher] | None = None,
                 rng: random.Random | None = None) -> None:
        self._pool = pool
        self._compute = compute
        self._settings = settings
        self._filters = list(default_filters() if filters is None else filters)
        self._weighers = list(default_weighers(settings) if weighers is None else weighers)
        self._rng = rng or random.Random()

    async def handle(self, msg: SchedulerMessage) -> None:
        """Dispatch one message of the ``scheduler`` queue, recording the
        ``schedule_instance`` event on the server's create action."""
        if isinstance(msg, ScheduleBuild):
            sid = msg.build.server_id
            try:
                async with actions.event(self._pool, sid, "schedule_instance"):
                    if await self.schedule_build(msg) is None:
                        async with self._pool.acquire() as conn:
                            row = await servers_db.get(conn, sid)
                        if row is not None and row["vm_state"] == VmState.ERROR:
                            raise _NotScheduled("No valid host was found.")
            except _NotScheduled:
                pass

    async def schedule_build(self, msg: ScheduleBuild) -> str | None:
        """Place the server and send it its build; the host it went to, or None.

        None means the server was left alone (gone, moved on) or put in ERROR
        with a fault saying why.
        """
        req = PlacementRequest.from_message(msg)
        blog = log.bind(server_id=str(req.server_id))
        try:
            async with self._pool.acquire() as conn:
                server = await servers_db.get(conn, req.server_id)
                if server is None or server["vm_state"] != VmState.BUILDING \
                        or server["task_state"] != TaskState.SCHEDULING:
                    blog.info("scheduler.ignored", reason="server is not in BUILD(scheduling)",
                              vm_state=server and server["vm_state"],
                              task_state=server and server["task_state"])
                    return None
                host = server["host"]
                if host is not None:
                    blog.info("scheduler.resumed", host=host)
                else:
                    host = await self._place(conn, req, blog)
                    if host is None:
                        return None
        except Exception as exc:
            await self._fail_unexpected(req.server_id, exc, blog)
            raise
        if not await self._send(req, msg.build, host, blog):
            return None
        return host

    async def _place(self, conn: asyncpg.Connection, req: PlacementRequest,
                     blog: structlog.typing.FilteringBoundLogger) -> str | None:
        """Choose a host, claim on it and record it on the server; None if none."""
        snap = await snapshot(conn, self._settings.service_down_time_s)
        if req.referenced_servers:
            # Where the servers the hints name live, read once for every filter.
            req = msgspec.structs.replace(req, placements=await locate_servers(
                conn, req.project_id, req.referenced_servers))
        if not snap.live:
            await self._no_valid_host(conn, req, snap, None, (), blog)
            return None
        outcome = run_filters(self._filters, snap.live, req)
        if not outcome.hosts:
            await self._no_valid_host(conn, req, snap, outcome, (), blog)
            return None
        ordered = order_hosts(self._weighers, outcome.hosts, req,
                              subset_size=self._settings.host_subset_size, rng=self._rng)
        tried: list[str] = []
        for host in ordered:
            tried.append(host.host)
            try:
                async with conn.transaction():
                    if not await hosts_db.claim(conn, host.host, req.server_id,
                                                req.ram_mb, req.disk_gb, req.vcpus):
                        # Another build took the room after we read the hosts.
                        blog.info("scheduler.claim_lost", host=host.host)
                        continue
                    if not await servers_db.place(conn, req.server_id, host.host,
                                                  host.availability_zone):
                        raise _ServerGone  # rolls the claim back with the transaction
            except _ServerGone:
                blog.info("scheduler.server_gone", host=host.host)
                return None
            blog.info("scheduler.claimed", host=host.host, attempts=len(tried),
                      filters=outcome.trail())
            return host.host
        # Every claim failed. A twin delivery of this message may have placed
        # the server meanwhile, which would explain it: then there is nothing to do.
        server = await servers_db.get(conn, req.server_id)
        if server is None or server["host"] is not None:
            blog.info("scheduler.server_gone", reason="placed or deleted meanwhile")
            return None
        await self._no_valid_host(conn, req, snap, outcome, tried, blog)
        return None

    async def _no_valid_host(self, conn: asyncpg.Connection, req: PlacementRequest,
                             snap: HostSnapshot, outcome: FilterOutcome | None,
                             tried: Sequence[str],
                             blog: structlog.typing.FilteringBoundLogger) -> None:
        f = fault(snap, outcome, tried)
        marked = await servers_db.set_error(conn, req.server_id, code=500, message=f.message,
                                            details=f.details, expect=TaskState.SCHEDULING)
        blog.warning("scheduler.no_valid_host", reason=f.details, marked_error=marked,
                     ram_mb=req.ram_mb, disk_gb=req.disk_gb, vcpus=req.vcpus,
                     availability_zone=req.availability_zone, hints=req.hints or None)

    async def _send(self, req: PlacementRequest, build: BuildServer, host: str,
                    blog: structlog.typing.FilteringBoundLogger) -> bool:
        """Cast the build to the host; on failure free the claim and put the server in ERROR."""
        try:
            await self._compute.build_server(host, build)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            blog.error("scheduler.cast_failed", host=host, error=error)
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    # Only while the server still waits for its build: if an
                    # earlier delivery's build reached the agent, it is the
                    # agent's now, claim included.
                    if await servers_db.set_error(
                            conn, req.server_id, code=500,
                            message=f"Failed to send the build to host {host}.",
                            details=error, expect=TaskState.SCHEDULING):
                        await hosts_db.release(conn, req.server_id)
            except Exception:
                blog.exception("scheduler.cast_failed_cleanup", host=host)
            return False
        blog.info("scheduler.placed", host=host)
        return True

    async def _fail_unexpected(self, server_id: UUID, exc: Exception,
                               blog: structlog.typing.FilteringBoundLogger) -> None:
        """Best effort after an unexpected error: no server may stay in scheduling for ever.

        The message is acked whatever happens (see ``shared.rpc.server``), so
        this is the last chance to make the failure visible to the user.
        """
        blog.exception("scheduler.failed")
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await servers_db.set_error(
                        conn, server_id, code=500,
                        message="An unexpected error occurred while scheduling the server.",
                        details=f"{type(exc).__name__}: {exc}", expect=TaskState.SCHEDULING):
                    await hosts_db.release(conn, server_id)
        except Exception:
            blog.exception("scheduler.failed_cleanup")
