"""Compute agent messages, sent to the queue of the host that owns the server.

v1: BuildServer, DeleteServer.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec
from shared.rpc import RpcClient


def host_queue(host: str) -> str:
    return f"compute.{host}"


class InjectedFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    contents: bytes


class BuildServer(msgspec.Struct, tag="build_server", frozen=True, kw_only=True):
    """Network, prepare disks and spawn a server the scheduler placed on this host."""

    server_id: UUID
    project_id: str
    user_id: str
    name: str
    flavor: FlavorSpec
    image: ImageSpec
    admin_pass: str | None = None
    metadata: dict[str, str] = {}
    security_groups: tuple[str, ...] = ("default",)
    config_drive: bool = False
    user_data: bytes | None = None
    files: tuple[InjectedFile, ...] = ()
    key_name: str | None = None
    key_data: str | None = None
    network_ids: tuple[UUID, ...] = ()


class DeleteServer(msgspec.Struct, tag="delete_server", frozen=True, kw_only=True):
    """Destroy the guest, free its addresses and capacity, mark the server DELETED."""

    server_id: UUID


ComputeMessage = BuildServer | DeleteServer


class ComputeClient:
    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc

    async def build_server(self, host: str, msg: BuildServer) -> None:
        await self._rpc.cast(host_queue(host), msg)

    async def delete_server(self, host: str, msg: DeleteServer) -> None:
        await self._rpc.cast(host_queue(host), msg)
