"""Deleting a server whose compute host is gone (Nova's "local delete").

The agent that owns a server normally deletes it. When that host has stopped
heartbeating, waiting for it could take forever, so the API (on a delete) and
the scheduler's sweep (for deletes already stuck) free what the server holds
elsewhere: its ports through the network service, its claim, and its row. The
guest, if the host ever comes back, is the host's to reap; a late DeleteServer
on its queue finds nothing left to do.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from shared.contracts.network import DeallocatePorts, NetworkClient
from shared.db import hosts, images, servers

log = structlog.get_logger(__name__)


async def delete_without_host(pool: asyncpg.Pool, network: NetworkClient, server_id: UUID) -> None:
    """Free the server's ports and claim and mark it DELETED. Idempotent."""
    freed = await network.deallocate_ports(DeallocatePorts(server_id=server_id))
    async with pool.acquire() as conn:
        async with conn.transaction():
            await hosts.release(conn, server_id)
            # A snapshot the dead host will never save must not stay SAVING.
            await images.fail_saving_of_server(conn, server_id)
            await servers.mark_deleted(conn, server_id)
    log.info("server.deleted_without_host", server_id=str(server_id), ports_freed=freed)
