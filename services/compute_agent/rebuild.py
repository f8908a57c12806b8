"""Rebuilding a server on this host (section 4.4.1.18): a new root disk from another
image, with the name, password, metadata and files the user gave, same flavor,
same addresses.

The API has already moved the server to REBUILD (task ``rebuilding``) and
recorded its new image, name and metadata; this ends it ACTIVE (SHUTOFF if it
was stopped, as Nova does) with the guest's power state, or in ERROR with a
fault. A rebuild delivered again after an agent crash runs again: the driver
re-images whatever disk it finds (or creates the guest if it lost it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import structlog

from services.compute_agent.drivers import DriverError, GuestSpec
from services.compute_agent.drivers.base import ConfigDrive
from shared.contracts.common import FlavorSpec, Port
from shared.contracts.compute import RebuildServer
from shared.db import actions, servers
from shared.errors import ComputeError
from shared.states import TaskState, VmState

if TYPE_CHECKING:
    import asyncpg

    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


async def rebuild_server(agent: ComputeAgent, msg: RebuildServer) -> None:
    sid = msg.server_id
    async with agent.serialized(sid):
        async with agent.worker.pool.acquire() as conn:
            row = await servers.get(conn, sid)
        if (row is None or row["deleted_at"] is not None or row["host"] != agent.host
                or row["task_state"] != TaskState.REBUILDING):
            log.info("compute.rebuild_skipped", server_id=str(sid),
                     reason="server is not rebuilding on this host")
            return
        log.info("compute.rebuild_started", server_id=str(sid), image=str(msg.image.id))
        try:
            async with actions.event(agent.worker.pool, sid, "compute_rebuild_instance",
                                     host=agent.host):
                await _rebuild(agent, msg, row)
        except Exception as exc:
            await _fail(agent, msg, exc)


async def _rebuild(agent: ComputeAgent, msg: RebuildServer, row: asyncpg.Record) -> None:
    sid = msg.server_id
    drive = None
    if row["config_drive"]:
        # The drive is written again for the new disk, with the new metadata and files.
        drive = ConfigDrive(metadata=msg.metadata, files=msg.files)
    spec = GuestSpec(
        server_id=sid, name=msg.name, flavor=msgspec.convert(row["flavor"], FlavorSpec),
        image=msg.image, ports=tuple(msgspec.convert(row["addresses"], list[Port])),
        admin_pass=msg.admin_pass, metadata=msg.metadata, files=msg.files, config_drive=drive)
    await agent.driver.rebuild(spec)
    end = VmState.STOPPED if row["vm_state"] == VmState.STOPPED else VmState.ACTIVE
    if end is VmState.STOPPED:
        await agent.driver.power_off(sid)
    info = await agent.driver.get_info(sid)
    power = int(info.power_state) if info else 0
    async with agent.worker.pool.acquire() as conn:
        if not await servers.finish_rebuild(conn, sid, end, power):
            log.info("compute.rebuild_aborted", server_id=str(sid), reason="server moved on")
            return
    log.info("compute.rebuild_finished", server_id=str(sid), vm_state=end.value,
             power_state=power)


async def _fail(agent: ComputeAgent, msg: RebuildServer, exc: Exception) -> None:
    """ERROR with a fault saying why (Nova's outcome of a failed rebuild)."""
    sid = msg.server_id
    if isinstance(exc, ComputeError):
        message, code = exc.message, exc.http_status
    elif isinstance(exc, DriverError):
        message, code = f"Rebuild of instance {sid} failed: {exc}", 500
    else:
        message, code = f"Rebuild of instance {sid} failed: {type(exc).__name__}", 500
    log.error("compute.rebuild_failed", server_id=str(sid), error=str(exc),
              exc_info=not isinstance(exc, (ComputeError, DriverError)))
    async with agent.worker.pool.acquire() as conn:
        await servers.set_error(conn, sid, code=code, message=message,
                                details=f"{type(exc).__name__}: {exc}",
                                expect=TaskState.REBUILDING)
