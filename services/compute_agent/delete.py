"""Deleting a server that lives on this host: guest, ports, claim, then DELETED.

Every step tolerates having been done already, so a delete delivered twice, or
after a failed build that cleaned up half, still ends with the server DELETED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from shared.contracts.compute import DeleteServer
from shared.contracts.network import DeallocatePorts
from shared.db import hosts, servers

if TYPE_CHECKING:
    from services.compute_agent.agent import ComputeAgent

log = structlog.get_logger(__name__)


async def delete_server(agent: ComputeAgent, msg: DeleteServer) -> None:
    sid = msg.server_id
    async with agent.lock(sid):
        await agent.driver.destroy(sid)
        freed = await agent.network.deallocate_ports(DeallocatePorts(server_id=sid))
        async with agent.worker.pool.acquire() as conn:
            async with conn.transaction():
                await hosts.release(conn, sid)
                deleted = await servers.mark_deleted(conn, sid)
        log.info("compute.deleted", server_id=str(sid), ports_freed=freed, was_live=deleted)
    agent.forget(sid)
