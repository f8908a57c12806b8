"""The one operation runner: how the agent carries out any operation on a server.

Every message that changes a server (build, delete, reboot, stop, start, rescue,
unrescue, rebuild, snapshot) and every fix the reconcile loop makes goes
through :func:`run`, so the reliability rules hold the same for all of them:

1. **one at a time**: operations on one server are serialised
   (``ComputeAgent.serialized``);
2. **the guard**: the server is read fresh and the operation goes ahead only if
   it is in the operation's task on this host (``Operation.applies``), begun by
   the request the message carries (``task_request_id``): a message delivered
   twice, one whose server was deleted or failed meanwhile, or a late copy of an
   older request's message, finds nothing to do;
3. **the work**, recorded as the instance action's event (``Operation.work``);
4. **the end**: the power state the driver reports, then one guarded update
   (``Operation.complete``, in a transaction that calls nothing else) to the
   state the transitions table (``shared.states``) gives; if the update finds
   the server moved on (deleted meanwhile), whoever moved it owns it now
   (``Operation.moved_on``);
5. **failures**: a transient one (database, broker or network service
   unreachable) goes up to the RPC layer, which handles the message again
   after a backoff (``shared.rpc.server``); the guard and idempotent steps make
   that safe. Anything else ends the operation as the table says (ERROR, or
   the state kept) with a fault worded by :func:`fault_for`: first
   ``Operation.cleanup`` undoes what the work made (calls to the driver and other
   services, with no connection held), then ``Operation.fail`` records it. When
   the retries run out, :func:`give_up` ends it the same way, with a fault
   saying a service stayed unavailable.

Each run is counted in ``nimbus_operations_total{operation, outcome}`` (and timed,
from the guard's yes, in ``nimbus_operation_duration_seconds``): ``success``,
``failed``, ``superseded``, ``skipped`` (the guard said no), ``retry`` (a transient
failure handed to the RPC layer) and ``gave_up``.

Each operation module (``build``, ``delete``, ``power``, ``rescue``, ``rebuild``,
``snapshot``) defines one :class:`Operation`; ``operations`` maps messages to
them. The reconcile loop starts what it needs (a stop) as the API does, with a
message through the outbox, so its fixes run here too.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import asyncpg
import structlog

from services.compute_agent.drivers import DriverError
from shared.contracts.network import NetworkClient
from shared.db import actions, servers
from shared.db.actions import ActionRef
from shared.errors import ComputeError, TaskStateConflict
from shared.metrics import OPERATION_DURATION, OPERATIONS
from shared.retry import describe, is_transient
from shared.rpc.server import CallContext
from shared.states import Failure, Transition, VmState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


class Fault(NamedTuple):
    """What a failed operation records on its server (section 4.4.1: ``fault``)."""

    code: int
    message: str
    """What the user reads: the operation, the server, and why in their terms."""
    details: str | None = None
    """For operators (shown to admins only)."""


def fault_for(transition: Transition, server_id: UUID, exc: BaseException) -> Fault:
    """The one wording of an operation's failure.

    Our own errors say what they mean already; a driver error names what the
    hypervisor refused; anything else is an internal error whose text stays in
    the log and the details (for operators), never in the message.
    """
    if isinstance(exc, ComputeError):
        return Fault(exc.http_status, exc.message, exc.details)
    what = f"The {transition.name} of instance {server_id} failed"
    if isinstance(exc, DriverError):
        # Drivers word their errors for users (what the hypervisor refused), never
        # with the text of an exception from below them.
        return Fault(500, f"{what}: {exc}", f"{type(exc).__name__}: {exc}")
    return Fault(500, f"{what}: an internal error occurred.", type(exc).__name__)


def gave_up_fault(transition: Transition, server_id: UUID, exc: BaseException,
                  deadline_s: float) -> Fault:
    """The fault of an operation whose retries ran out (see ``shared.rpc.server``);
    what failed goes to the details, shown to admins only."""
    return Fault(500, f"The {transition.name} of instance {server_id} could not be "
                      f"completed: a service it needs stayed unavailable for {deadline_s:g} s.",
                 f"{type(exc).__name__}: {describe(exc)}")


@dataclass
class Run:
    """One run of an operation on one server: what its steps get."""

    agent: ComputeAgent
    msg: Any
    row: asyncpg.Record
    """The server as read under its lock, just before the work."""
    action: ActionRef
    network: NetworkClient
    """The network service, with this run's request id."""
    result: Any = None
    """What the work hands to ``complete`` (a snapshot's size...)."""
    power: int = 0
    """The guest's power state as the driver reported it after the work."""

    @property
    def server_id(self) -> UUID:
        return self.action.server_id

    @property
    def pool(self) -> asyncpg.Pool:
        return self.agent.worker.pool

    async def power_state(self) -> int:
        """What the driver reports for the guest now (NOSTATE, 0, if it has none)."""
        info = await self.agent.driver.get_info(self.server_id)
        return int(info.power_state) if info is not None else 0


class Operation(abc.ABC):
    """One kind of operation on a server; the defaults fit a user action on a built
    server (reboot, stop, start, rescue, unrescue) as the transitions table gives it."""

    transition: Transition

    def applies(self, row: asyncpg.Record | None, host: str) -> bool:
        """Whether the server is in this operation's task on ``host`` (the runner
        also checks the task is the message's request's)."""
        return (row is not None and row["deleted_at"] is None and row["host"] == host
                and row["task_state"] == self.transition.task)

    @abc.abstractmethod
    async def work(self, run: Run) -> None:
        """Do the operation through the driver (and the network service). Idempotent:
        it may run again after a transient failure, or after the agent died."""

    async def complete(self, run: Run, conn: asyncpg.Connection) -> bool:
        """Record the end state (guarded); False if the server moved on meanwhile."""
        t = self.transition
        return await servers.complete_task(
            conn, run.server_id, t.task, vm_state=t.end_state(VmState(run.row["vm_state"])),
            power_state=run.power, request_id=run.action.request_id)

    async def fail(self, run: Run, conn: asyncpg.Connection, fault: Fault) -> bool:
        """Record the failure as the table says; False if the server moved on."""
        t = self.transition
        end = servers.fail_task if t.failure is Failure.KEEP else servers.error_task
        return await end(conn, run.server_id, t.task, code=fault.code, message=fault.message,
                         details=fault.details, request_id=run.action.request_id)

    async def cleanup(self, run: Run) -> None:
        """Before a failure is recorded: undo what the work made outside the database
        (nothing, by default: a user action leaves the guest as the driver left it).
        Best effort; no connection is held meanwhile."""

    async def skipped(self, agent: ComputeAgent, msg: Any, row: asyncpg.Record | None) -> None:
        """The guard said no (nothing to do, by default)."""

    async def moved_on(self, run: Run) -> None:
        """Someone else moved the server during the work: by default only this run's
        action is closed (a delete cleans up after itself)."""
        await close_action(run)


async def run(agent: ComputeAgent, op: Operation, msg: Any, ctx: CallContext) -> bool:
    """Carry out ``op`` for ``msg`` (see the module docstring); True if it ran.

    Transient failures are raised for the RPC layer to retry the message.
    """
    sid: UUID = msg.server_id
    name = op.transition.name
    async with agent.serialized(sid):
        async with agent.worker.pool.acquire() as conn:
            row = await servers.get(conn, sid)
        if not (op.applies(row, agent.host) and _same_request(row, ctx)):
            log.info("compute.operation_skipped", server_id=str(sid), operation=name,
                     vm_state=row["vm_state"] if row else None,
                     task_state=row["task_state"] if row else None)
            await op.skipped(agent, msg, row)
            OPERATIONS.labels(name, "skipped").inc()
            return False
        assert row is not None
        action = ActionRef(sid, ctx.request_id)
        current = Run(agent=agent, msg=msg, row=row, action=action,
                      network=agent.network_client(ctx.request_id))
        log.info("compute.operation_started", server_id=str(sid), operation=name,
                 task_state=row["task_state"], redelivered=ctx.redelivered or None)
        started = time.perf_counter()
        try:
            async with actions.event(agent.worker.pool, action, op.transition.event,
                                     host=agent.host):
                await op.work(current)
                current.power = await current.power_state()
                async with agent.worker.pool.acquire() as conn, conn.transaction():
                    if not await op.complete(current, conn):
                        raise TaskStateConflict(f"Instance {sid} moved on during its {name}.")
        except TaskStateConflict:
            log.info("compute.operation_superseded", server_id=str(sid), operation=name)
            await op.moved_on(current)
            _count(name, "superseded", started)
            return True
        except Exception as exc:
            if is_transient(exc):
                _count(name, "retry", started)
                raise
            await _fail(op, current, fault_for(op.transition, sid, exc), exc)
            _count(name, "failed", started)
            return True
    log.info("compute.operation_finished", server_id=str(sid), operation=name)
    _count(name, "success", started)
    return True


def _count(operation: str, outcome: str, started: float) -> None:
    OPERATIONS.labels(operation, outcome).inc()
    OPERATION_DURATION.labels(operation, outcome).observe(time.perf_counter() - started)


async def give_up(agent: ComputeAgent, op: Operation, msg: Any, ctx: CallContext,
                  exc: BaseException, deadline_s: float) -> None:
    """End ``op`` for ``msg`` with a fault naming the outage its retries could not
    outlast (if the server is still in its task here)."""
    sid: UUID = msg.server_id
    async with agent.serialized(sid):
        async with agent.worker.pool.acquire() as conn:
            row = await servers.get(conn, sid)
        if not (op.applies(row, agent.host) and _same_request(row, ctx)):
            return
        assert row is not None
        current = Run(agent=agent, msg=msg, row=row, action=ActionRef(sid, ctx.request_id),
                      network=agent.network_client(ctx.request_id))
        await _fail(op, current, gave_up_fault(op.transition, sid, exc, deadline_s), exc)
        OPERATIONS.labels(op.transition.name, "gave_up").inc()


def _same_request(row: asyncpg.Record | None, ctx: CallContext) -> bool:
    """The message belongs to the request that began the server's task (either side
    may not know its request: work started before request ids were kept)."""
    return (row is None or ctx.request_id is None or row["task_request_id"] is None
            or row["task_request_id"] == ctx.request_id)


async def _fail(op: Operation, current: Run, fault: Fault, exc: BaseException) -> None:
    expected = isinstance(exc, (ComputeError, DriverError)) or is_transient(exc)
    log.error("compute.operation_failed", server_id=str(current.server_id),
              operation=op.transition.name, error=f"{type(exc).__name__}: {exc}",
              exc_info=not expected)
    try:
        await op.cleanup(current)
    except Exception as again:  # the fault below matters more
        log.warning("compute.cleanup_failed", server_id=str(current.server_id),
                    operation=op.transition.name, error=describe(again))
    async with current.pool.acquire() as conn, conn.transaction():
        if not await op.fail(current, conn, fault):
            # Deleted meanwhile (the guest went with it, hence the failure): the
            # delete owns the server; only our action is left to close.
            await actions.finish(conn, current.action, fault.message)


async def close_action(run: Run) -> None:
    """Finish the action of a run that was superseded (its server moved on)."""
    if run.action.request_id is None:
        return
    async with run.pool.acquire() as conn:
        await actions.finish(conn, run.action)
