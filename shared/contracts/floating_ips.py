"""Floating IP messages (spec section 4.4.8), served by the network service on
their own queue so that a burst of them never waits behind port allocations.

v1: AllocateFloatingIp, DeallocateFloatingIp, AssociateFloatingIp,
    DisassociateFloatingIp, ListFloatingIpPools (all calls).
v2: AssociateFloatingIp of an address on another server moves it (as Nova)
    instead of raising FloatingIpAssociated; the message is unchanged.

The API reads floating IPs straight from PostgreSQL; every write goes through
these messages. The errors below cross RPC by class name (``shared.rpc``), so
both sides know them by importing this module; they carry the faults the API
answers with.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from shared.errors import BadRequest, Conflict, NotFound, QuotaExceeded
from shared.rpc import RpcClient

QUEUE = "network.floating"


class FloatingIp(msgspec.Struct, frozen=True, kw_only=True):
    """An allocated floating IP, as the network service answers it."""

    id: int
    address: str
    pool: str
    project_id: str
    server_id: UUID | None = None
    fixed_address: str | None = None


class AllocateFloatingIp(msgspec.Struct, tag="allocate_floating_ip", frozen=True, kw_only=True):
    """Give the project the pool's lowest free address, within ``quota``.

    ``pool`` None is the configured pool. ``quota`` is the project's
    maxTotalFloatingIps (-1 unlimited): the service counts the project's
    addresses under a per-project lock, so concurrent allocations never pass it.
    ``request_key`` makes a redelivered message return the address it took.
    Raises FloatingIpPoolNotFound, FloatingIpQuotaExceeded, NoMoreFloatingIps.
    """

    project_id: str
    request_key: UUID
    pool: str | None = None
    quota: int = -1


class DeallocateFloatingIp(msgspec.Struct, tag="deallocate_floating_ip", frozen=True,
                           kw_only=True):
    """Give the project's floating IP ``floating_ip_id`` back to the pool,
    disassociating it first. FloatingIpNotFound unless the project holds it."""

    project_id: str
    floating_ip_id: int


class AssociateFloatingIp(msgspec.Struct, tag="associate_floating_ip", frozen=True,
                          kw_only=True):
    """Map the project's floating ``address`` to one of the server's fixed addresses
    (``fixed_address``, else the server's first).

    An address on another server (or on another fixed address of this one) is
    taken off it first, both servers' addresses caches written in the same
    transaction: Nova's re-association (the spec is silent). Raises
    FloatingIpNotFound (not the project's), NoFixedIpForServer /
    FixedAddressNotOnServer. Associating it again with the same fixed address
    changes nothing.
    """

    project_id: str
    server_id: UUID
    address: str
    fixed_address: str | None = None


class DisassociateFloatingIp(msgspec.Struct, tag="disassociate_floating_ip", frozen=True,
                             kw_only=True):
    """Take the project's floating ``address`` off the server.

    Raises FloatingIpNotFound (not the project's) or FloatingIpNotAssociated
    (not on this server).
    """

    project_id: str
    server_id: UUID
    address: str


class ListFloatingIpPools(msgspec.Struct, tag="list_floating_ip_pools", frozen=True,
                          kw_only=True):
    """The names of the floating IP pools."""


FloatingIpMessage = (AllocateFloatingIp | DeallocateFloatingIp | AssociateFloatingIp
                     | DisassociateFloatingIp | ListFloatingIpPools)


# ---- faults ------------------------------------------------------------------
# Status codes: Nova's where the spec's fault list (section 3.11) has them.


class FloatingIpNotFound(NotFound):
    """An id or address the project does not hold (another project's too)."""


class FloatingIpPoolNotFound(NotFound):
    """Nova: 404 "Floating ip pool not found." """


class NoMoreFloatingIps(NotFound):
    """The pool has no free address. Nova answered 404 "No more floating ips in
    pool <name>." (its exception and its API's mapping); we keep both."""


class FloatingIpQuotaExceeded(QuotaExceeded):
    """maxTotalFloatingIps reached: 413 overLimit with ``Retry-After: 0`` like
    every quota here (Nova answered 403 for this one quota)."""


class FloatingIpAssociated(Conflict):
    """Raised by v1 network services only: since v2 an address on another server
    moves (AssociateFloatingIp). Kept so that an API beside a v1 service still
    answers its 409 conflictingRequest rather than a 500."""


class FloatingIpNotAssociated(Conflict):
    """removeFloatingIp of an address that is not on this server: the request
    conflicts with the address's state, which section 3.11 spells
    conflictingRequest (409); Nova used 422, which the spec's list lacks."""


class NoFixedIpForServer(BadRequest):
    """The server has no fixed address yet (still building, or failed before
    networking). Nova: 400 "No fixed ips associated to instance"."""


class FixedAddressNotOnServer(BadRequest):
    """``fixed_address`` is not one of the server's. Nova: 400 "Specified fixed
    address not assigned to instance"."""


class FloatingIpClient:
    def __init__(self, rpc: RpcClient, *, request_id: str | None,
                 timeout: float | None = None) -> None:
        self._rpc = rpc
        self._request_id = request_id
        self._timeout = timeout

    async def allocate(self, msg: AllocateFloatingIp) -> FloatingIp:
        return await self._rpc.call(QUEUE, msg, FloatingIp,
                                    request_id=self._request_id, timeout=self._timeout)

    async def deallocate(self, msg: DeallocateFloatingIp) -> None:
        await self._rpc.call(QUEUE, msg, type(None),
                             request_id=self._request_id, timeout=self._timeout)

    async def associate(self, msg: AssociateFloatingIp) -> FloatingIp:
        return await self._rpc.call(QUEUE, msg, FloatingIp,
                                    request_id=self._request_id, timeout=self._timeout)

    async def disassociate(self, msg: DisassociateFloatingIp) -> FloatingIp:
        return await self._rpc.call(QUEUE, msg, FloatingIp,
                                    request_id=self._request_id, timeout=self._timeout)

    async def pools(self) -> list[str]:
        return await self._rpc.call(QUEUE, ListFloatingIpPools(), list[str],
                                    request_id=self._request_id, timeout=self._timeout)
