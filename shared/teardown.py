"""Deleting a server whose compute host is down (Nova's "local delete").

The agent that owns a server normally deletes it. When that host counts as down
(``shared.db.hosts``), waiting for it could take forever, so the API (on a
delete) and the scheduler's sweep (for deletes already stuck) free what the
server holds elsewhere: its floating IPs and reservations through the network
service, its claim, and its row. Its fixed addresses are *kept*: its guest may
still run on that host with them, and an address handed to another server
meanwhile would be on the wire twice. If the host comes back, its reconcile
loop destroys the orphan guest and frees them then; if it never does,
``python -m services.api.manage forget-host HOST`` frees them. A late
DeleteServer on the host's queue finds nothing left to do but that same reaping.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from shared.contracts.network import DeallocatePorts, NetworkClient
from shared.db import hosts, images, servers

log = structlog.get_logger(__name__)


async def delete_without_host(pool: asyncpg.Pool, network: NetworkClient, server_id: UUID, *,
                              request_id: str | None = None) -> None:
    """Free the server's floating IPs and claim and mark it DELETED, keeping its fixed
    addresses for its host to reap. Idempotent."""
    await network.deallocate_ports(DeallocatePorts(server_id=server_id, keep_fixed=True))
    async with pool.acquire() as conn:
        async with conn.transaction():
            await hosts.release(conn, server_id)
            # A snapshot the dead host will never save must not stay SAVING.
            await images.fail_saving_of_server(conn, server_id)
            await servers.mark_deleted(conn, server_id, request_id=request_id)
    log.info("server.deleted_without_host", server_id=str(server_id))
