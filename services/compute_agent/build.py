"""Building a server the scheduler placed here: networking, disks, spawn, ACTIVE.

Each step is a guarded move of the task state (see ``shared.db.servers``), so a
delete that arrives meanwhile makes the next move fail and the build stop; and
each step is idempotent, so a build message delivered again (after a transient
failure, or after this agent died) picks up where the server's task state says
it stopped.

A build that fails for good ends in ERROR with a fault, holding nothing: its
claim is released, and its guest and ports go (best effort, before the fault is
recorded: the ports also go with the server's delete). A build whose server was moved on meanwhile (deleted,
or scheduled again elsewhere because this host was taken for dead) only
removes its own guest here: the ports then belong to the new build.
"""

from __future__ import annotations

import asyncpg
import structlog

from services.compute_agent.drivers import GuestConfig, GuestSpec
from services.compute_agent.drivers.base import hostname_for
from services.compute_agent.runner import Fault, Operation, Run, close_action
from shared.contracts.compute import BuildServer
from shared.contracts.network import AllocatePorts, DeallocatePorts
from shared.db import hosts, servers
from shared.states import BUILD, BUILD_SEQUENCE, TaskState, VmState, next_build_task

log = structlog.get_logger(__name__)


class Build(Operation):
    transition = BUILD

    def applies(self, row: asyncpg.Record | None, host: str) -> bool:
        return (row is not None and row["vm_state"] == VmState.BUILDING and row["host"] == host
                and row["task_state"] in BUILD_SEQUENCE)

    async def work(self, run: Run) -> None:
        msg: BuildServer = run.msg
        sid = run.server_id
        task = TaskState(run.row["task_state"])
        if task is TaskState.SCHEDULING:
            task = await _advance(run, task)
        # Networking runs again on a redelivered build: allocation is idempotent.
        # The network service writes the server's addresses cache itself, in the
        # transaction that makes the ports (it keeps floating IPs in it too).
        ports = await run.network.allocate_ports(AllocatePorts(
            server_id=sid, project_id=msg.project_id, host=run.agent.host,
            network_ids=msg.network_ids, requests=msg.port_requests))
        log.info("compute.networked", server_id=str(sid), addresses=[p.address for p in ports])
        if task is TaskState.NETWORKING:
            task = await _advance(run, task)
        # The volumes it starts with (a boot volume is its root disk) were taken
        # for it by the API when it was created (in-use, this server's): the
        # driver only plugs them in, at spawn.
        if task is TaskState.BLOCK_DEVICE_MAPPING:
            task = await _advance(run, task)
        config = GuestConfig(
            hostname=hostname_for(msg.name, sid), metadata=msg.metadata, files=msg.files,
            user_data=msg.user_data, admin_pass=msg.admin_pass, config_drive=msg.config_drive,
            public_keys={msg.key_name: msg.key_data} if msg.key_name and msg.key_data else {})
        await run.agent.driver.spawn(GuestSpec(
            server_id=sid, name=msg.name, flavor=msg.flavor, image=msg.image, ports=tuple(ports),
            config=config, volumes=msg.block_devices))

    async def complete(self, run: Run, conn: asyncpg.Connection) -> bool:
        return await servers.finish_build(conn, run.server_id, run.power, host=run.agent.host,
                                          request_id=run.action.request_id)

    async def cleanup(self, run: Run) -> None:
        # What the build made: the guest here, and the ports, unless the server
        # went to another host meanwhile (its ports are that build's then).
        await run.agent.driver.destroy(run.server_id)
        if await _still_here(run):
            await run.network.deallocate_ports(DeallocatePorts(server_id=run.server_id))

    async def fail(self, run: Run, conn: asyncpg.Connection, fault: Fault) -> bool:
        sid = run.server_id
        if not await servers.set_error(conn, sid, code=fault.code, message=fault.message,
                                       details=fault.details, expect=BUILD_SEQUENCE,
                                       host=run.agent.host,
                                       request_id=run.action.request_id):
            return False
        await hosts.release(conn, sid)
        return True

    async def moved_on(self, run: Run) -> None:
        sid = run.server_id
        async with run.pool.acquire() as conn:
            row = await servers.get(conn, sid)
        await run.agent.driver.destroy(sid)
        if row is not None and row["host"] != run.agent.host:
            # Scheduled again elsewhere: the ports and the create action are that
            # build's now; only the guest here was this one's.
            log.info("compute.build_aborted", server_id=str(sid), reason="scheduled elsewhere")
            return
        await close_action(run)
        if row is None or row["task_state"] == TaskState.DELETING:
            log.info("compute.build_aborted", server_id=str(sid), reason="deleted meanwhile")
            return  # the delete cleans up after itself
        # Failed by a sweep meanwhile: nothing may stay held for it here.
        log.warning("compute.build_aborted", server_id=str(sid), reason="server moved on",
                    vm_state=row["vm_state"])
        await run.network.deallocate_ports(DeallocatePorts(server_id=sid))
        async with run.pool.acquire() as conn:
            await servers.set_addresses(conn, sid, [])


async def _still_here(run: Run) -> bool:
    async with run.pool.acquire() as conn:
        row = await servers.get(conn, run.server_id)
    return row is not None and row["host"] == run.agent.host


async def _advance(run: Run, task: TaskState) -> TaskState:
    """Move the build to its next step (guarded: a delete meanwhile stops it)."""
    nxt = next_build_task(task)
    assert nxt is not None
    async with run.pool.acquire() as conn:
        await servers.set_task(conn, run.server_id, VmState.BUILDING, nxt, task,
                               host=run.agent.host)
    return nxt
