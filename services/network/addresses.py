"""The server's ``addresses`` cache (``servers.addresses``), which the API's views read.

The network service is its only writer: every transaction that changes a
server's ports or floating IPs ends by writing the cache again from the tables,
under the server's port lock, so the cache is always what the tables say once
that transaction commits. Its shape: one entry per fixed port, in port order,
as a ``Port`` (``id``, ``network_id``, ``network_name``, ``address``, ``mac``,
``version``) plus ``floating_ips``, the floating addresses mapped to that port's
address, oldest first. A reader that decodes the entries as ``Port`` sees just
the fixed ports.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from shared.db import servers
from services.network import floating_ips, ports


async def entries(conn: asyncpg.Connection, server_id: UUID) -> list[dict[str, Any]]:
    """The cache's value for the server, from the tables."""
    floats = await floating_ips.of_server(conn, server_id)
    out = []
    for port in await ports.of_server(conn, server_id):
        entry = msgspec.to_builtins(port)
        entry["floating_ips"] = [f["address"] for f in floats
                                 if f["network_id"] == port.network_id
                                 and f["fixed_address"] == port.address]
        out.append(entry)
    return out


async def refresh(conn: asyncpg.Connection, server_id: UUID) -> list[dict[str, Any]]:
    """Write the server's cache from the tables (a server row that is gone is left alone)."""
    value = await entries(conn, server_id)
    await servers.set_addresses(conn, server_id, value)
    return value
