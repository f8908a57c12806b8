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

Failures follow the delivery rules of ``shared.rpc.server``: a transient one
(the database or broker away, or no host heartbeating yet because the database
or this scheduler just came back: :class:`HostsNotReady`) raises, and the
message is handled again after a backoff; the server stays in
BUILD(scheduling) meanwhile, never ERROR for a fault that passes. Anything
else puts the server in ERROR at once with a fault (and the message goes to
the dead-letter queue). No host that fits is not an error but an outcome: the
server goes to ERROR with a fault saying why, naming the hosts an earlier
attempt of the build failed on.
"""

from __future__ import annotations

import random
import time
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
from services.scheduler.host_state import HostCache, HostSnapshot, HostState, locate_servers
from services.scheduler.no_valid_host import fault
from services.scheduler.request import PlacementRequest
from services.scheduler.settings import SchedulerSettings
from services.scheduler.weighers import HostWeigher, default_weighers, order_hosts
from shared.contracts.compute import host_queue
from shared.contracts.scheduler import ScheduleBuild, SchedulerMessage
from shared.db import actions
from shared.db import build_requests
from shared.db import hosts as hosts_db
from shared.db import servers as servers_db
from shared.db.actions import ActionRef
from shared.errors import ServiceUnavailable
from shared.metrics import SCHEDULER_DECISION_CPU
from shared.retry import OutageClock, is_transient
from shared.rpc import RpcClient
from shared.rpc.server import CallContext
from shared.states import TaskState, VmState

log = structlog.get_logger(__name__)


class _ServerGone(Exception):
    """The server left BUILD(scheduling) between our read and our placement."""


class _NotScheduled(Exception):
    """Marks the schedule_instance event as failed; the fault is already recorded."""


class HostsNotReady(ServiceUnavailable):
    """No host has heartbeated since the database or this scheduler came back, but
    some are known: they get their grace before a build is refused for want of
    hosts (see ``shared.db.hosts``)."""

    default_message = "No compute host has reported since the scheduler's view was refreshed."


class BuildScheduler:
    """The handler of the ``scheduler`` queue."""

    def __init__(self, pool: asyncpg.Pool, rpc: RpcClient, settings: SchedulerSettings,
                 *, filters: Sequence[HostFilter] | None = None,
                 weighers: Sequence[HostWeigher] | None = None,
                 rng: random.Random | None = None,
                 outages: OutageClock | None = None) -> None:
        self._pool = pool
        self._rpc = rpc
        self._settings = settings
        self._outages = outages
        self._filters = list(default_filters() if filters is None else filters)
        self._weighers = list(default_weighers(settings) if weighers is None else weighers)
        self._rng = rng or random.Random()
        self._hosts = HostCache(settings.service_down_time_s, settings.host_refresh_s)

    async def handle(self, msg: SchedulerMessage, ctx: CallContext) -> None:
        """Dispatch one message of the ``scheduler`` queue, recording the
        ``schedule_instance`` event on the server's create action."""
        if isinstance(msg, ScheduleBuild):
            sid = msg.build.server_id
            try:
                async with actions.event(self._pool, ActionRef(sid, ctx.request_id),
                                         "schedule_instance"):
                    if await self.schedule_build(msg, request_id=ctx.request_id) is None:
                        async with self._pool.acquire() as conn:
                            row = await servers_db.get(conn, sid)
                        if row is not None and row["vm_state"] == VmState.ERROR:
                            raise _NotScheduled("No valid host was found.")
            except _NotScheduled:
                pass

    async def give_up(self, msg: SchedulerMessage, ctx: CallContext, exc: BaseException) -> None:
        """The retries of ``msg`` ran out: ERROR with a fault saying why."""
        if isinstance(msg, ScheduleBuild):
            await self._fail(msg.build.server_id,
                             "The server could not be scheduled: a service it needs stayed "
                             "unavailable.", exc, request_id=ctx.request_id)

    async def schedule_build(self, msg: ScheduleBuild, *,
                             request_id: str | None = None) -> str | None:
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
                    host = await self._place(conn, req, blog, request_id)
                    if host is None:
                        return None
        except Exception as exc:
            if not is_transient(exc):
                blog.exception("scheduler.failed")
                await self._fail(req.server_id, "An unexpected error occurred while scheduling "
                                 "the server.", exc, request_id=request_id)
            raise
        # A failed cast raises BrokerUnavailable: the message comes again, finds the
        # server placed, and sends the build again (never ERROR for a broker blip).
        await self._rpc.cast(host_queue(host), msg.build, request_id=request_id)
        blog.info("scheduler.placed", host=host)
        return host

    async def _place(self, conn: asyncpg.Connection, req: PlacementRequest,
                     blog: structlog.typing.FilteringBoundLogger,
                     request_id: str | None) -> str | None:
        """Choose a host, claim on it and record it on the server; None if none.

        On a view of the hosts read earlier (``host_state.HostCache``) and, if
        that one leads nowhere, once more on a view read now."""
        if req.referenced_servers:
            # Where the servers the hints name live, read once for every filter.
            req = msgspec.structs.replace(req, placements=await locate_servers(
                conn, req.project_id, req.referenced_servers))
        fresh = False
        while True:
            snap, fresh = await self._hosts.get(conn, healthy_for_s=self._healthy_for(),
                                                fresh=fresh)
            outcome, tried = None, []
            if snap.live:
                # Synchronous: the thread's CPU clock counts this build's choice only.
                cpu = time.thread_time()
                outcome = run_filters(self._filters, snap.live, req)
                ordered = order_hosts(self._weighers, outcome.hosts, req,
                                      subset_size=self._settings.host_subset_size,
                                      rng=self._rng)
                SCHEDULER_DECISION_CPU.observe(time.thread_time() - cpu)
                if ordered:
                    placed = await self._claim_one(conn, req, outcome, ordered, tried, blog)
                    if placed is not False:
                        return placed  # a host, or None: the server moved on
            if fresh:
                break
            fresh = True  # a view from before may have missed hosts that came or freed up
        if not snap.live and snap.in_grace:
            raise HostsNotReady(f"{snap.in_grace} compute host(s) have not reported since "
                                "the scheduler's view of them was refreshed.")
        if tried:
            # Every claim failed. A twin delivery of this message may have placed
            # the server meanwhile, which would explain it: then there is nothing to do.
            server = await servers_db.get(conn, req.server_id)
            if server is None or server["host"] is not None:
                blog.info("scheduler.server_gone", reason="placed or deleted meanwhile")
                return None
        await self._no_valid_host(conn, req, snap, outcome, tried, blog, request_id)
        return None

    async def _claim_one(self, conn: asyncpg.Connection, req: PlacementRequest,
                         outcome: FilterOutcome, ordered: Sequence[HostState],
                         tried: list[str],
                         blog: structlog.typing.FilteringBoundLogger) -> str | None | bool:
        """Claim on the first of ``ordered`` that takes it and record it on the
        server: the host; None if the server moved on; False if every claim was refused."""
        for host in ordered:
            tried.append(host.host)
            # Counted into the view before the claim's round trip, so that builds
            # chosen meanwhile on the same view see it; given back if it fails.
            self._hosts.consume(host.host, req.ram_mb, req.disk_gb, req.vcpus)
            claimed = False
            try:
                async with conn.transaction():
                    if not await hosts_db.claim(conn, host.host, req.server_id,
                                                req.ram_mb, req.disk_gb, req.vcpus,
                                                live_within_s=self._settings.service_down_time_s):
                        # Another build took the room after we read the hosts, or
                        # the host was disabled or went silent.
                        blog.info("scheduler.claim_lost", host=host.host)
                        self._hosts.invalidate()
                        continue
                    if not await servers_db.place(conn, req.server_id, host.host,
                                                  host.availability_zone):
                        raise _ServerGone  # rolls the claim back with the transaction
                    claimed = True
            except _ServerGone:
                blog.info("scheduler.server_gone", host=host.host)
                return None
            finally:
                if not claimed:
                    self._hosts.consume(host.host, -req.ram_mb, -req.disk_gb, -req.vcpus)
            blog.info("scheduler.claimed", host=host.host, attempts=len(tried),
                      filters=outcome.trail())
            return host.host
        return False

    async def _no_valid_host(self, conn: asyncpg.Connection, req: PlacementRequest,
                             snap: HostSnapshot, outcome: FilterOutcome | None,
                             tried: Sequence[str],
                             blog: structlog.typing.FilteringBoundLogger,
                             request_id: str | None) -> None:
        f = fault(snap, outcome, tried,
                  earlier=await build_requests.attempts(conn, req.server_id))
        marked = await servers_db.set_error(conn, req.server_id, code=500, message=f.message,
                                            details=f.details, expect=TaskState.SCHEDULING,
                                            request_id=request_id)
        blog.warning("scheduler.no_valid_host", reason=f.details, marked_error=marked,
                     ram_mb=req.ram_mb, disk_gb=req.disk_gb, vcpus=req.vcpus,
                     availability_zone=req.availability_zone, hints=req.hints or None)

    def _healthy_for(self) -> float:
        return self._outages.healthy_for() if self._outages is not None else float("inf")

    async def _fail(self, server_id: UUID, message: str, exc: BaseException, *,
                    request_id: str | None) -> None:
        """ERROR with a fault, and the claim released, while the server still waits
        for its build (if its build reached an agent, the server is the agent's)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if await servers_db.set_error(conn, server_id, code=500, message=message,
                                          details=type(exc).__name__,
                                          expect=TaskState.SCHEDULING, request_id=request_id):
                await hosts_db.release(conn, server_id)
