"""Network service messages. v1: AllocatePorts, DeallocatePorts."""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.common import Port
from shared.rpc import RpcClient

QUEUE = "network"


class AllocatePorts(msgspec.Struct, tag="allocate_ports", frozen=True, kw_only=True):
    """Give a server a port (fixed address and MAC) on each network it asks for.

    With no ``network_ids`` the project's default network is used, created on
    first use. Idempotent: a server that already has ports gets them back.
    """

    server_id: UUID
    project_id: str
    host: str
    network_ids: tuple[UUID, ...] = ()


class DeallocatePorts(msgspec.Struct, tag="deallocate_ports", frozen=True, kw_only=True):
    """Free every port of a server; its addresses become free for reuse. Idempotent."""

    server_id: UUID


NetworkMessage = AllocatePorts | DeallocatePorts


class NetworkClient:
    def __init__(self, rpc: RpcClient, *, timeout: float | None = None) -> None:
        self._rpc = rpc
        self._timeout = timeout

    async def allocate_ports(self, msg: AllocatePorts) -> list[Port]:
        return await self._rpc.call(QUEUE, msg, list[Port], timeout=self._timeout)

    async def deallocate_ports(self, msg: DeallocatePorts) -> int:
        return await self._rpc.call(QUEUE, msg, int, timeout=self._timeout)
