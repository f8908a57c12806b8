"""The reconcile loop: what the hypervisor runs, made to agree with the database.

The hypervisor is the authority on what runs; the database on what should. At
agent start and every ``[reconcile] interval_s`` the agent lists its guests and
its servers and, for each pair, the pure :func:`plan` says what to do:

* a server with a task in flight (or an operation running in this agent) is
  skipped: its operation will settle it;
* an ACTIVE server whose guest stopped or crashed on its own is stopped
  through the stop operation (it shows SHUTOFF, with an instance action saying
  why), as Nova's ``_sync_power_states`` stops it through its API: the task is
  begun and the StopServer message written to the outbox in one transaction, as
  the API's ``cast_action`` does, so the stop is delivered, retried and given up
  on by the same rules as a user's;
* a STOPPED server whose guest runs is powered off again;
* a server whose guest vanished from the hypervisor goes to ERROR with a fault
  saying so: nothing can explain it but an operator or a crash;
* a guest the database does not know, knows as deleted, or knows on another
  host (its build was scheduled again elsewhere while this host was taken for
  dead) is an orphan: it is destroyed, and a deleted server's fixed addresses,
  kept for it since (``DeallocatePorts.keep_fixed``), are freed only then;
* a delete stuck in ``deleting`` on this (live) host for ``stuck_delete_s`` is
  run again;
* otherwise only a drifted power state is recorded.

A pass reads the servers of every host of the agent process in one query (and the
guests' servers known elsewhere, and the kept addresses, in one more each), plans
on that read and leaves alone every server it finds in order. Only where the plan
says to act does the executor re-read that server under its lock and plan again
before acting (the first read may be stale); its writes are guarded (a server that began a
task meanwhile is left alone); a stop and a delete go through their operations
(``runner``), as a message from the API would. A failure is logged and that
server tried again a later period, backing off per server.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import asyncpg
import msgspec
import structlog

from services.compute_agent import runner
from services.compute_agent.delete import Delete
from services.compute_agent.drivers import GuestInfo
from shared import outbox
from shared.contracts.compute import DeleteServer, StopServer, host_queue
from shared.contracts.network import DeallocatePorts
from shared.db import actions, servers
from shared.retry import describe
from shared.rpc.server import CallContext
from shared.states import STOP, PowerState, TaskState, VmState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


class ReconcileSettings(msgspec.Struct, frozen=True, kw_only=True):
    interval_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """Seconds between two passes (and the first pass runs at agent start). Lower
    notices a guest that stopped, crashed or vanished sooner, for one listing of
    every guest and one query more per pass."""
    stuck_delete_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    """A server of this host still ``deleting`` this many seconds after its delete
    began, with no operation on it running here, has its delete run again."""
    max_backoff_passes: Annotated[int, msgspec.Meta(ge=1)] = 8
    """A server whose fix failed is skipped for 1, 2, 4... passes, at most this many."""


class Known(msgspec.Struct, frozen=True, kw_only=True):
    """A server as the database knows it, for :func:`plan`."""

    vm_state: VmState
    task_state: TaskState | None
    power_state: int
    host: str | None
    stale_s: float = 0.0
    """Seconds since the row last changed."""


# ---- what plan() decides ----------------------------------------------------

class Skip(msgspec.Struct, frozen=True, tag=True):
    reason: str


class NoOp(msgspec.Struct, frozen=True, tag=True):
    pass


class RecordPower(msgspec.Struct, frozen=True, tag=True):
    power_state: int


class MarkStopped(msgspec.Struct, frozen=True, tag=True):
    """Stop the server through the stop operation: its guest stopped on its own."""

    why: str


class PowerOff(msgspec.Struct, frozen=True, tag=True):
    """The server is STOPPED but its guest runs: power it off again."""


class MarkLost(msgspec.Struct, frozen=True, tag=True):
    """ERROR with a fault: the guest is gone and nothing explains it."""

    why: str


class DestroyOrphan(msgspec.Struct, frozen=True, tag=True):
    """Destroy a guest no live server of this host owns."""

    free_addresses: bool
    """The server is deleted (or unknown): its fixed addresses go too."""


class RetryDelete(msgspec.Struct, frozen=True, tag=True):
    pass


Step = Skip | NoOp | RecordPower | MarkStopped | PowerOff | MarkLost | DestroyOrphan | RetryDelete

_STOPPED_ON_ITS_OWN = {int(PowerState.SHUTDOWN): "the guest shut down on its own",
                       int(PowerState.CRASHED): "the guest crashed"}


def plan(row: Known | None, seen: GuestInfo | None, *, host: str, busy: bool = False,
         stuck_delete_s: float = 120.0) -> Step:
    """What to do about one server (``row``, None if the database has no live server
    by that id) and its guest (``seen``, None if the hypervisor has none), on ``host``."""
    if row is None or row.vm_state is VmState.DELETED or row.host != host:
        if seen is None:
            return NoOp()
        if busy:
            return Skip("an operation on it runs here")
        deleted_or_unknown = row is None or row.vm_state is VmState.DELETED
        return DestroyOrphan(free_addresses=deleted_or_unknown)
    if busy:
        return Skip("an operation on it runs here")
    if row.task_state is TaskState.DELETING:
        return RetryDelete() if row.stale_s >= stuck_delete_s else Skip("delete in flight")
    if row.task_state is not None:
        return Skip(f"task {row.task_state.value} in flight")
    actual = int(seen.power_state) if seen is not None else int(PowerState.NOSTATE)
    if seen is None:
        if row.vm_state in (VmState.ACTIVE, VmState.STOPPED, VmState.RESCUED):
            return MarkLost("its guest is no longer on the hypervisor")
        return RecordPower(actual) if actual != row.power_state else NoOp()
    if row.vm_state is VmState.ACTIVE and actual in _STOPPED_ON_ITS_OWN:
        return MarkStopped(_STOPPED_ON_ITS_OWN[actual])
    if row.vm_state is VmState.STOPPED and actual == PowerState.RUNNING:
        return PowerOff()
    return RecordPower(actual) if actual != row.power_state else NoOp()


# ---- the executor -----------------------------------------------------------

_MINE = """
SELECT id, vm_state, task_state, power_state, host, task_request_id,
       extract(epoch FROM now() - updated_at)::float8 AS stale_s
  FROM servers WHERE host = ANY($1::text[]) AND deleted_at IS NULL"""

_BY_ID = """
SELECT id, vm_state, task_state, power_state, host, task_request_id,
       extract(epoch FROM now() - updated_at)::float8 AS stale_s
  FROM servers WHERE id = ANY($1::uuid[])"""

# Deleted servers whose fixed addresses were kept for a guest on this host (the
# ports say where: a build scheduled again elsewhere may have no host any more).
_HELD_ADDRESSES = """
SELECT DISTINCT p.host, p.server_id AS id FROM ports p JOIN servers s ON s.id = p.server_id
 WHERE p.host = ANY($1::text[]) AND s.deleted_at IS NOT NULL"""


def _known(r: asyncpg.Record) -> Known:
    return Known(vm_state=VmState(r["vm_state"]),
                 task_state=TaskState(r["task_state"]) if r["task_state"] else None,
                 power_state=r["power_state"], host=r["host"], stale_s=r["stale_s"])


class Reconciler:
    """Runs :func:`plan` over every server and guest of the agent process's hosts."""

    def __init__(self, agents: Sequence[ComputeAgent], settings: ReconcileSettings) -> None:
        self._agents = list(agents)
        self._settings = settings
        self._failures: dict[UUID, tuple[int, int]] = {}
        """server -> (failures in a row, passes left to skip)"""
        self.passes = 0

    async def reconcile(self) -> dict[str, int]:
        """One pass; how many servers got each kind of step (for logs and tests)."""
        agents = self._agents
        if not agents:
            return {}
        guests = {a.host: set(await a.driver.list_instances()) for a in agents}
        names = list(guests)
        async with agents[0].worker.pool.acquire() as conn:
            mine = await conn.fetch(_MINE, names)
            rows: dict[UUID, asyncpg.Record] = {r["id"]: r for r in mine}
            others = list({g for ids in guests.values() for g in ids} - rows.keys())
            if others:
                rows.update({r["id"]: r for r in await conn.fetch(_BY_ID, others)})
            held = await conn.fetch(_HELD_ADDRESSES, names)
        on_host: dict[str, set[UUID]] = {a.host: set() for a in agents}
        for r in mine:
            on_host[r["host"]].add(r["id"])
        counts: dict[str, int] = {}

        def count(kind: str) -> None:
            if kind not in ("NoOp", "Skip"):
                counts[kind] = counts.get(kind, 0) + 1

        for agent in agents:
            seen_ids = guests[agent.host]
            for sid in on_host[agent.host] | seen_ids:
                if self._backing_off(sid):
                    continue
                try:
                    # The pass's read first: most servers are in order, and need
                    # neither their lock nor a read of their own.
                    row = rows.get(sid)
                    seen = await agent.driver.get_info(sid) if sid in seen_ids else None
                    if isinstance(self._plan(agent, sid, row, seen), (NoOp, Skip)):
                        kind = "NoOp"
                    else:
                        kind = await self._one(agent, sid)
                except Exception as exc:  # one server's trouble is not the others'
                    self._failed(sid, exc)
                    continue
                self._failures.pop(sid, None)
                count(kind)
        by_host = {a.host: a for a in agents}
        for r in held:
            agent, sid = by_host[r["host"]], r["id"]
            if sid in guests[agent.host] or agent.busy(sid) or self._backing_off(sid):
                continue
            try:
                await self._free_addresses(agent, sid)
            except Exception as exc:
                self._failed(sid, exc)
                continue
            count("FreeAddresses")
        self.passes += 1
        if counts:
            log.info("compute.reconciled", **counts)
        return counts

    def _plan(self, agent: ComputeAgent, sid: UUID, row: asyncpg.Record | None,
              seen: GuestInfo | None) -> Step:
        return plan(_known(row) if row is not None else None, seen, host=agent.host,
                    busy=agent.busy(sid), stuck_delete_s=self._settings.stuck_delete_s)

    async def _one(self, agent: ComputeAgent, sid: UUID) -> str:
        """Plan and act for one server of ``agent``'s host, under its lock, on a fresh read."""
        if agent.busy(sid):
            return "Skip"  # an operation runs on it: it will settle the server
        async with agent.serialized(sid):
            async with agent.worker.pool.acquire() as conn:
                rows = await conn.fetch(_BY_ID, [sid])
            row = _known(rows[0]) if rows else None
            task_request_id = rows[0]["task_request_id"] if rows else None
            seen = await agent.driver.get_info(sid)
            step = plan(row, seen, host=agent.host, stuck_delete_s=self._settings.stuck_delete_s)
            if not isinstance(step, (NoOp, Skip, RecordPower)):
                log.warning("compute.reconcile_step", server_id=str(sid),
                            step=type(step).__name__, vm_state=row.vm_state if row else None,
                            power_state=int(seen.power_state) if seen else None)
            match step:
                case RecordPower(power_state=power):
                    async with agent.worker.pool.acquire() as conn:
                        await servers.record_power(conn, sid, power)
                case PowerOff():
                    # The server is stopped in the database: its guest should not
                    # run at all, so the power is cut (no shutdown to wait for).
                    await agent.driver.power_off(sid, timeout_s=0)
                    async with agent.worker.pool.acquire() as conn:
                        await servers.record_power(conn, sid, int(PowerState.SHUTDOWN))
                case MarkLost(why=why):
                    assert row is not None
                    async with agent.worker.pool.acquire() as conn:
                        # Guarded: a task the API began meanwhile (a delete) wins.
                        await servers.set_error(
                            conn, sid, code=500, host=agent.host, idle_in=row.vm_state,
                            message=f"Instance {sid} is in ERROR: {why}.",
                            details=f"reconcile: no guest on the hypervisor of {agent.host}")
                case DestroyOrphan(free_addresses=free):
                    await agent.driver.destroy(sid)
                    if free:
                        await self._free_addresses(agent, sid)
                case _:
                    pass  # NoOp, Skip; MarkStopped and RetryDelete below
        # Stopping and deleting go through their operations, which take the lock.
        if isinstance(step, MarkStopped):
            await self._stop(agent, sid, step.why)
        elif isinstance(step, RetryDelete):
            await runner.run(agent, Delete(), DeleteServer(server_id=sid),
                             CallContext(request_id=task_request_id))
        return type(step).__name__

    async def _stop(self, agent: ComputeAgent, sid: UUID, why: str) -> None:
        """Begin the stop as the API's ``cast_action`` does: the task, the instance
        action and the StopServer message (to this host's own queue, through the
        outbox) in one transaction."""
        rid = f"req-{uuid.uuid4()}"
        relay = agent.worker.relay
        assert relay is not None, "the agent runs an outbox relay"
        async with agent.worker.pool.acquire() as conn, conn.transaction():
            row = await servers.get(conn, sid)
            if row is None:
                return
            started, _ = await servers.begin_task(conn, sid, row["project_id"], STOP,
                                                  request_id=rid)
            if not started:
                return  # something else began meanwhile: next pass looks again
            await actions.start_action(conn, server_id=sid, project_id=row["project_id"],
                                       user_id=row["user_id"], action=STOP.action,
                                       request_id=rid,
                                       message=f"Stopped by its compute host: {why}.")
            item = await outbox.put(conn, host_queue(agent.host), StopServer(server_id=sid),
                                    request_id=rid, lease_s=relay.lease_s)
        relay.send(item)

    async def _free_addresses(self, agent: ComputeAgent, sid: UUID) -> None:
        freed = await agent.network_client(None).deallocate_ports(
            DeallocatePorts(server_id=sid))
        log.info("compute.orphan_addresses_freed", server_id=str(sid), ports=freed)

    def _backing_off(self, sid: UUID) -> bool:
        failures, skip = self._failures.get(sid, (0, 0))
        if skip > 0:
            self._failures[sid] = (failures, skip - 1)
            return True
        return False

    def _failed(self, sid: UUID, exc: Exception) -> None:
        failures = self._failures.get(sid, (0, 0))[0] + 1
        skip = min(2 ** (failures - 1), self._settings.max_backoff_passes)
        self._failures[sid] = (failures, skip)
        log.warning("compute.reconcile_failed", server_id=str(sid), error=describe(exc),
                    failures=failures, skip_passes=skip)
