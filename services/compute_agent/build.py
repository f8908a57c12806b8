"""Building a server the scheduler placed here: networking, disks, spawn, ACTIVE.

Each step is a guarded move of the task state (see ``shared.db.servers``), so a
delete that arrives meanwhile makes the next move fail and the build stop; and
each step is idempotent, so a build message delivered again after a crash picks
up where the server's task state says it stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import structlog

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.base import ConfigDrive
from shared.contracts.compute import BuildServer
from shared.contracts.network import AllocatePorts, DeallocatePorts
from shared.db import actions, hosts, servers
from shared.errors import ComputeError, TaskStateConflict
from shared.states import TaskState, VmState, next_build_task

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)

_RESUMABLE = {TaskState.SCHEDULING, TaskState.NETWORKING,
              TaskState.BLOCK_DEVICE_MAPPING, TaskState.SPAWNING}


async def build_server(agent: ComputeAgent, msg: BuildServer) -> None:
    sid = msg.server_id
    async with agent.serialized(sid):
        try:
            async with agent.worker.pool.acquire() as conn:
                row = await servers.get(conn, sid)
            if row is None or row["vm_state"] != VmState.BUILDING or row["host"] != agent.host:
                log.info("compute.build_skipped", server_id=str(sid),
                         reason="server is not building on this host")
                return
            task = TaskState(row["task_state"]) if row["task_state"] else None
            if task is None or task not in _RESUMABLE:
                log.info("compute.build_skipped", server_id=str(sid), task_state=task)
                return
            log.info("compute.build_started", server_id=str(sid), task_state=task)
            async with actions.event(agent.worker.pool, sid, "compute_build_and_run_instance",
                                     host=agent.host):
                await _run_steps(agent, msg, task)
        except TaskStateConflict:
            await _moved_on(agent, sid)
        except Exception as exc:
            await _fail(agent, msg, exc)


async def _moved_on(agent: ComputeAgent, sid: UUID) -> None:
    """Someone else moved the server mid-build. A delete cleans up after itself;
    anything else (the sweep failed a build it took for orphaned) leaves a guest
    and ports nobody accounts for, so they go."""
    async with agent.worker.pool.acquire() as conn:
        row = await servers.get(conn, sid)
    if row is not None and row["task_state"] == TaskState.DELETING:
        log.info("compute.build_aborted", server_id=str(sid), reason="deleted meanwhile")
        return
    log.warning("compute.build_aborted", server_id=str(sid), reason="server moved on",
                vm_state=row["vm_state"] if row else None)
    await agent.driver.destroy(sid)
    await agent.network.deallocate_ports(DeallocatePorts(server_id=sid))
    async with agent.worker.pool.acquire() as conn:
        await servers.set_addresses(conn, sid, [])


async def _advance(agent: ComputeAgent, sid: UUID, task: TaskState) -> TaskState:
    """Move the build to its next step (guarded: a delete meanwhile stops it)."""
    nxt = next_build_task(task)
    assert nxt is not None
    async with agent.worker.pool.acquire() as conn:
        await servers.set_task(conn, sid, VmState.BUILDING, nxt, task)
    return nxt


async def _run_steps(agent: ComputeAgent, msg: BuildServer, task: TaskState) -> None:
    sid = msg.server_id
    pool = agent.worker.pool
    if task is TaskState.SCHEDULING:
        task = await _advance(agent, sid, task)
    # Networking runs again on a redelivered build: allocation is idempotent.
    # The network service writes the server's addresses cache itself, in the
    # transaction that makes the ports (it keeps floating IPs in it too).
    ports = await agent.network.allocate_ports(AllocatePorts(
        server_id=sid, project_id=msg.project_id, host=agent.host,
        network_ids=msg.network_ids, requests=msg.port_requests))
    log.info("compute.networked", server_id=str(sid), addresses=[p.address for p in ports])
    if task is TaskState.NETWORKING:
        task = await _advance(agent, sid, task)
    # No volumes yet: the root and ephemeral disks come with the guest.
    if task is TaskState.BLOCK_DEVICE_MAPPING:
        task = await _advance(agent, sid, task)
    drive = None
    if msg.config_drive:
        drive = ConfigDrive(metadata=msg.metadata, files=msg.files,
                            public_key=msg.key_data, user_data=msg.user_data)
    await agent.driver.spawn(GuestSpec(
        server_id=sid, name=msg.name, flavor=msg.flavor, image=msg.image, ports=tuple(ports),
        admin_pass=msg.admin_pass, metadata=msg.metadata, files=msg.files,
        user_data=msg.user_data, config_drive=drive))
    info = await agent.driver.get_info(sid)
    power = int(info.power_state) if info else 0
    async with pool.acquire() as conn:
        if not await servers.finish_build(conn, sid, power):
            # Deleted while spawning: the delete that follows removes the guest.
            raise TaskStateConflict(f"Instance {sid} left BUILD(spawning) while spawning.")
    log.info("compute.build_finished", server_id=str(sid), power_state=power)


async def _fail(agent: ComputeAgent, msg: BuildServer, exc: Exception) -> None:
    """ERROR with a fault saying why, and nothing held: guest, ports, claim.

    If even this fails (the database is gone), the error goes up and the
    message is acked; the scheduler's build-timeout sweep then fails the server.
    """
    sid = msg.server_id
    if isinstance(exc, ComputeError):
        message, code = exc.message, exc.http_status
    elif isinstance(exc, DriverError):
        message, code = f"Build of instance {sid} failed: {exc}", 500
    else:
        message, code = f"Build of instance {sid} failed: {type(exc).__name__}", 500
    log.error("compute.build_failed", server_id=str(sid), error=str(exc),
              exc_info=not isinstance(exc, (ComputeError, DriverError)))
    try:
        await agent.driver.destroy(sid)
        await agent.network.deallocate_ports(DeallocatePorts(server_id=sid))
    except Exception as cleanup_exc:  # the fault below matters more
        log.warning("compute.build_cleanup_failed", server_id=str(sid), error=str(cleanup_exc))
    async with agent.worker.pool.acquire() as conn:
        async with conn.transaction():
            await hosts.release(conn, sid)
            await servers.set_addresses(conn, sid, [])
            await servers.set_error(conn, sid, code=code, message=message,
                                    details=f"{type(exc).__name__}: {exc}")
