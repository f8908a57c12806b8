"""Deleting a server that lives on this host: guest, ports, claim, then DELETED.

Every step tolerates having been done already, so a delete delivered twice, or
after a failed build that cleaned up half, still ends with the server DELETED.
A step that fails (the network service or the database unreachable) is tried
again with backoff; if it still fails the server goes to ERROR with a fault,
leaving the delete task, so the user sees why and can delete again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from shared.contracts.compute import DeleteServer
from shared.contracts.network import DeallocatePorts
from shared.db import actions, hosts, servers
from shared.states import TaskState

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)

ATTEMPTS = 5
FIRST_BACKOFF_S = 1.0


async def delete_server(agent: ComputeAgent, msg: DeleteServer) -> None:
    sid = msg.server_id
    async with agent.serialized(sid):
        backoff = FIRST_BACKOFF_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with actions.event(agent.worker.pool, sid, "compute_terminate_instance",
                                         host=agent.host):
                    await _delete(agent, msg)
                return
            except Exception as exc:
                log.warning("compute.delete_failed", server_id=str(sid), attempt=attempt,
                            error=f"{type(exc).__name__}: {exc}")
                if attempt == ATTEMPTS:
                    await _give_up(agent, msg, exc)
                    return
                await asyncio.sleep(backoff)
                backoff *= 2


async def _delete(agent: ComputeAgent, msg: DeleteServer) -> None:
    sid = msg.server_id
    await agent.driver.destroy(sid)
    freed = await agent.network.deallocate_ports(DeallocatePorts(server_id=sid))
    async with agent.worker.pool.acquire() as conn:
        async with conn.transaction():
            await hosts.release(conn, sid)
            deleted = await servers.mark_deleted(conn, sid)
    log.info("compute.deleted", server_id=str(sid), ports_freed=freed, was_live=deleted)


async def _give_up(agent: ComputeAgent, msg: DeleteServer, exc: Exception) -> None:
    try:
        async with agent.worker.pool.acquire() as conn:
            await servers.set_error(
                conn, msg.server_id, code=500,
                message=f"Delete of instance {msg.server_id} failed; try deleting it again.",
                details=f"{type(exc).__name__}: {exc}", expect=TaskState.DELETING)
    except Exception as again:  # the database itself is gone: only the log can tell
        log.error("compute.delete_abandoned", server_id=str(msg.server_id), error=str(again))
