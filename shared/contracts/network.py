"""Network service messages.

v1: AllocatePorts, DeallocatePorts.
v2: PortRequest; AllocatePorts.requests (a network with an optional fixed IP each,
    ``network_ids`` still works); ReserveFixedIps (call). DeallocatePorts also
    frees reservations and disassociates the server's floating IPs. The network
    service writes the server's ``addresses`` cache itself (fixed ports, each with
    its ``floating_ips``) in the transaction that changes them.
v3: DeallocatePorts.keep_fixed (a server deleted without its host keeps its
    fixed addresses until the host reaps its guest); AllocatePorts moves ports a
    server already has to the new ``host`` (a build scheduled again elsewhere).
v4: EnsureDefaultNetwork (call): a project's default network before its first
    server, for clients that look it up by name first.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.contracts.common import Port
from shared.rpc import RpcClient

QUEUE = "network"


class PortRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One port a server asks for: on ``network_id``, with ``fixed_ip`` if given
    (else the network's lowest free address)."""

    network_id: UUID
    fixed_ip: str | None = None


class AllocatePorts(msgspec.Struct, tag="allocate_ports", frozen=True, kw_only=True):
    """Give a server a port (fixed address and MAC) on each network it asks for.

    ``requests`` (v2) name the networks in order, each with an optional fixed
    IP (reserved for the server by ReserveFixedIps, or free); without them
    ``network_ids`` do, and with neither the project's default network is used,
    created on first use. Idempotent: a server that already has ports gets them
    back, now bound to ``host`` (v3: a build rescheduled from a dead host keeps
    its addresses).
    """

    server_id: UUID
    project_id: str
    host: str
    network_ids: tuple[UUID, ...] = ()
    requests: tuple[PortRequest, ...] = ()

    def port_requests(self) -> tuple[PortRequest, ...]:
        """What is asked for: ``requests``, else one request per ``network_ids``."""
        return self.requests or tuple(PortRequest(network_id=n) for n in self.network_ids)


class DeallocatePorts(msgspec.Struct, tag="deallocate_ports", frozen=True, kw_only=True):
    """Free every port of a server; its addresses become free for reuse. Idempotent."""

    server_id: UUID
    keep_fixed: bool = False
    """(v3) Take the floating IPs off and free reservations, but keep the ports and
    their fixed addresses: the server was deleted while its host was down, and its
    guest may still run there with them. The host's agent frees them (a second
    DeallocatePorts) once it has destroyed that guest."""


class ReserveFixedIps(msgspec.Struct, tag="reserve_fixed_ips", frozen=True, kw_only=True):
    """(call, v2) Hold the fixed IPs of ``requests`` for a server about to be written.

    All or nothing; BadRequest when a network is not the project's, an address
    is not one of its network's, or another server holds it. Idempotent for one
    server. DeallocatePorts frees what was reserved; a reservation whose server
    never comes to be is freed by the network service after a while.
    Returns how many addresses are reserved.
    """

    server_id: UUID
    project_id: str
    requests: tuple[PortRequest, ...]


class EnsureDefaultNetwork(msgspec.Struct, tag="ensure_default_network", frozen=True,
                           kw_only=True):
    """(call, v4) Make the project's default network if it has none yet.

    A project's first use makes it; listing the project's networks is a first use
    too, since clients look the network up by name before they boot on it
    (gophercloud, ``openstack server create --network private``). Idempotent;
    returns the default network's id.
    """

    project_id: str


NetworkMessage = AllocatePorts | DeallocatePorts | ReserveFixedIps | EnsureDefaultNetwork


class NetworkClient:
    def __init__(self, rpc: RpcClient, *, request_id: str | None,
                 timeout: float | None = None) -> None:
        self._rpc = rpc
        self._request_id = request_id
        self._timeout = timeout

    async def allocate_ports(self, msg: AllocatePorts) -> list[Port]:
        return await self._rpc.call(QUEUE, msg, list[Port],
                                    request_id=self._request_id, timeout=self._timeout)

    async def deallocate_ports(self, msg: DeallocatePorts) -> int:
        return await self._rpc.call(QUEUE, msg, int,
                                    request_id=self._request_id, timeout=self._timeout)

    async def reserve_fixed_ips(self, msg: ReserveFixedIps) -> int:
        return await self._rpc.call(QUEUE, msg, int,
                                    request_id=self._request_id, timeout=self._timeout)

    async def ensure_default_network(self, msg: EnsureDefaultNetwork) -> UUID:
        return await self._rpc.call(QUEUE, msg, UUID,
                                    request_id=self._request_id, timeout=self._timeout)
