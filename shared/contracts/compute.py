"""Compute agent messages, sent to the queue of the host that owns the server.

v1: BuildServer, DeleteServer.
v2: RebootServer, StopServer, StartServer, RescueServer, UnrescueServer, RebuildServer,
    SnapshotServer (casts); GetConsoleOutput, GetVncConsole (calls).
v3: BuildServer.port_requests (networks with their fixed IPs).
v4: AttachVolume, DetachVolume (casts); BuildServer.block_devices (volumes the
    guest starts with: a boot volume in place of an image), BuildServer.image
    optional (None when it boots from a volume).

Every message may be delivered more than once (``shared.rpc.server``): the agent
handles each idempotently.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.network import PortRequest
from shared.contracts.volume import VolumeConnection
from shared.rpc import RpcClient


def host_queue(host: str) -> str:
    return f"compute.{host}"


class InjectedFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    contents: bytes


class BlockDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A volume attached to a guest: which, as what device, and how to reach it."""

    volume_id: UUID
    device: str
    """As the API shows it: ``/dev/vdb``."""
    connection: VolumeConnection
    boot: bool = False
    """The guest's root disk (boot from volume): it boots from this, not an image."""


class BuildServer(msgspec.Struct, tag="build_server", frozen=True, kw_only=True):
    """Network, prepare disks and spawn a server the scheduler placed on this host."""

    server_id: UUID
    project_id: str
    user_id: str
    name: str
    flavor: FlavorSpec
    image: ImageSpec | None
    """None: the server boots from the volume in ``block_devices`` marked ``boot``."""
    admin_pass: str | None = None
    metadata: dict[str, str] = {}
    security_groups: tuple[str, ...] = ("default",)
    config_drive: bool = False
    user_data: bytes | None = None
    files: tuple[InjectedFile, ...] = ()
    key_name: str | None = None
    key_data: str | None = None
    network_ids: tuple[UUID, ...] = ()
    port_requests: tuple[PortRequest, ...] = ()
    """(v3) The networks again, each with its fixed IP if one was asked for (and
    reserved); ``network_ids`` stays for agents that predate it."""
    block_devices: tuple[BlockDevice, ...] = ()
    """(v4) Volumes attached from the start (the API holds them ``attaching``)."""


class DeleteServer(msgspec.Struct, tag="delete_server", frozen=True, kw_only=True):
    """Destroy the guest, free its addresses and capacity, mark the server DELETED."""

    server_id: UUID


class RebootServer(msgspec.Struct, tag="reboot_server", frozen=True, kw_only=True):
    """Reboot the guest (SOFT: ask the OS; HARD: power-cycle); the server is ACTIVE after."""

    server_id: UUID
    hard: bool = False


class StopServer(msgspec.Struct, tag="stop_server", frozen=True, kw_only=True):
    """Power the guest off; the server ends SHUTOFF (vm_state stopped)."""

    server_id: UUID


class StartServer(msgspec.Struct, tag="start_server", frozen=True, kw_only=True):
    """Power a stopped guest on; the server ends ACTIVE."""

    server_id: UUID


class RescueServer(msgspec.Struct, tag="rescue_server", frozen=True, kw_only=True):
    """Boot the guest from a rescue image with ``admin_pass``; the server ends RESCUE."""

    server_id: UUID
    admin_pass: str
    rescue_image: ImageSpec | None = None


class UnrescueServer(msgspec.Struct, tag="unrescue_server", frozen=True, kw_only=True):
    """Boot the guest from its own disk again; the server ends ACTIVE."""

    server_id: UUID


class RebuildServer(msgspec.Struct, tag="rebuild_server", frozen=True, kw_only=True):
    """Re-create the guest's disk from ``image`` keeping its addresses; ends ACTIVE."""

    server_id: UUID
    image: ImageSpec
    name: str
    admin_pass: str | None = None
    metadata: dict[str, str] = {}
    files: tuple[InjectedFile, ...] = ()


class SnapshotServer(msgspec.Struct, tag="snapshot_server", frozen=True, kw_only=True):
    """Copy the guest's disk into the (SAVING) image ``image_id``, which ends ACTIVE."""

    server_id: UUID
    image_id: UUID
    name: str


class AttachVolume(msgspec.Struct, tag="attach_volume", frozen=True, kw_only=True):
    """Attach the volume (held ``attaching`` for this server) to the guest; the
    volume ends ``in-use``, or ``available`` again if the hypervisor refused."""

    server_id: UUID
    device: BlockDevice


class DetachVolume(msgspec.Struct, tag="detach_volume", frozen=True, kw_only=True):
    """Detach the volume (held ``detaching``) from the guest; it ends ``available``,
    or ``in-use`` again if the guest would not let go of it."""

    server_id: UUID
    volume_id: UUID


class GetConsoleOutput(msgspec.Struct, tag="get_console_output", frozen=True, kw_only=True):
    """(call) The last ``length`` lines of the guest's console log, all if None."""

    server_id: UUID
    length: int | None = None


class VncEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int


class GetVncConsole(msgspec.Struct, tag="get_vnc_console", frozen=True, kw_only=True):
    """(call) Where the guest's VNC server listens, or None if it has none."""

    server_id: UUID


ComputeMessage = (BuildServer | DeleteServer | RebootServer | StopServer | StartServer
                  | RescueServer | UnrescueServer | RebuildServer | SnapshotServer
                  | AttachVolume | DetachVolume | GetConsoleOutput | GetVncConsole)


class ComputeClient:
    """The calls of this contract (the casts go through the outbox: ``shared.outbox``)."""

    def __init__(self, rpc: RpcClient, *, request_id: str | None) -> None:
        self._rpc = rpc
        self._request_id = request_id

    async def console_output(self, host: str, msg: GetConsoleOutput,
                             *, timeout: float | None = None) -> str:
        return await self._rpc.call(host_queue(host), msg, str, request_id=self._request_id,
                                    timeout=timeout)

    async def vnc_console(self, host: str, msg: GetVncConsole,
                          *, timeout: float | None = None) -> VncEndpoint | None:
        return await self._rpc.call(host_queue(host), msg, VncEndpoint | None,
                                    request_id=self._request_id, timeout=timeout)
