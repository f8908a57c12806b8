"""The network service's floating IP side: the handler of the ``network.floating``
queue (``shared.contracts.floating_ips``) and :func:`serve`, which registers it
(and the sweep of stale fixed IP reservations) on the service's Worker.

Each change runs in one transaction that takes the project's floating IP lock
first (``floating_ips.lock_project``): allocations of a project are counted
against its quota one at a time, and associations of one address take turns
(the last one holds it). A change to a server's floating IPs also takes that
server's port lock and rewrites its addresses cache before committing
(``addresses``); moving an address from one server to another takes both.
"""

from __future__ import annotations

import asyncio
import ipaddress

import asyncpg
import structlog

from shared.contracts.floating_ips import (
    QUEUE,
    AllocateFloatingIp,
    AssociateFloatingIp,
    DeallocateFloatingIp,
    DisassociateFloatingIp,
    FixedAddressNotOnServer,
    FloatingIp,
    FloatingIpMessage,
    FloatingIpNotAssociated,
    FloatingIpNotFound,
    FloatingIpPoolNotFound,
    FloatingIpQuotaExceeded,
    ListFloatingIpPools,
    NoFixedIpForServer,
    NoMoreFloatingIps,
)
from shared.rpc.server import CallContext
from shared.worker import Worker
from services.network import addresses, floating_ips, networks, ports
from services.network.settings import NetworkSettings

log = structlog.get_logger(__name__)


class FloatingIpHandler:
    """Serves ``network.floating``. Allocation is idempotent by its request key;
    association of the same address to the same fixed address changes nothing;
    the rest answer a fault when delivered again after success, to a caller
    that no longer waits."""

    def __init__(self, pool: asyncpg.Pool, settings: NetworkSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._pool_ready = False
        self._pool_lock = asyncio.Lock()

    async def __call__(self, msg: FloatingIpMessage,
                       ctx: CallContext) -> FloatingIp | list[str] | None:
        match msg:
            case AllocateFloatingIp():
                return await self.allocate(msg)
            case DeallocateFloatingIp():
                return await self.deallocate(msg)
            case AssociateFloatingIp():
                return await self.associate(msg)
            case DisassociateFloatingIp():
                return await self.disassociate(msg)
            case ListFloatingIpPools():
                return [self._settings.floating_pool_name]
        raise TypeError(f"unexpected message {type(msg).__name__}")

    async def ensure_pool(self) -> None:
        """Make the configured pool's addresses, once per process (first use)."""
        if self._pool_ready:
            return
        async with self._pool_lock:
            if self._pool_ready:
                return
            async with self._pool.acquire() as conn, conn.transaction():
                await floating_ips.sync_pool(conn, self._settings.floating_pool_name,
                                             self._settings.floating_pool)
            self._pool_ready = True

    async def allocate(self, msg: AllocateFloatingIp) -> FloatingIp:
        name = self._settings.floating_pool_name
        if msg.pool is not None and msg.pool != name:
            raise FloatingIpPoolNotFound(f"Floating IP pool {msg.pool} not found.")
        await self.ensure_pool()
        async with self._pool.acquire() as conn, conn.transaction():
            await floating_ips.lock_project(conn, msg.project_id)
            if (done := await floating_ips.by_allocation_key(conn, msg.request_key)) is not None:
                return done
            used = await floating_ips.count(conn, msg.project_id)
            if 0 <= msg.quota <= used:
                raise FloatingIpQuotaExceeded(
                    f"Quota exceeded for floating_ips: Requested 1, but already used {used} "
                    f"of {msg.quota} floating_ips",
                    details="Deallocate a floating IP to allocate another.")
            fip = await floating_ips.take(conn, msg.project_id, name,
                                          self._settings.floating_pool, msg.request_key)
            if fip is None:
                raise NoMoreFloatingIps(f"No more floating IPs in pool {name}.")
        log.info("network.floating_ip_allocated", project_id=msg.project_id, id=fip.id,
                 address=fip.address)
        return fip

    async def deallocate(self, msg: DeallocateFloatingIp) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await floating_ips.lock_project(conn, msg.project_id)
            fip = await floating_ips.get(conn, msg.project_id, msg.floating_ip_id)
            if fip is None:
                raise FloatingIpNotFound(f"Floating IP not found for ID {msg.floating_ip_id}.")
            if fip.server_id is not None:
                # Lock order: project, server, row (a DeallocatePorts of the
                # server may take it off meanwhile; that is fine).
                await ports.lock_server(conn, fip.server_id)
            await floating_ips.lock_address(conn, msg.project_id, fip.address)
            await floating_ips.release(conn, fip.address)
            if fip.server_id is not None:
                await addresses.refresh(conn, fip.server_id)
        log.info("network.floating_ip_deallocated", project_id=msg.project_id, id=fip.id,
                 address=fip.address, server_id=str(fip.server_id) if fip.server_id else None)

    async def associate(self, msg: AssociateFloatingIp) -> FloatingIp:
        address = _canonical(msg.address)
        if address is None:
            raise FloatingIpNotFound(f"Floating IP not found for address {msg.address}.")
        async with self._pool.acquire() as conn, conn.transaction():
            await floating_ips.lock_project(conn, msg.project_id)
            # An address on another server moves to this one (below), so that
            # server's port lock is wanted too, before the row's (the lock
            # order): it is learnt from a read without a lock. Under the project
            # lock only a DeallocatePorts of that server can change it meanwhile,
            # and only to no server. Two port locks in one order (by id).
            holder = await floating_ips.server_of(conn, msg.project_id, address)
            for sid in sorted({msg.server_id, holder} - {None}, key=str):
                await ports.lock_server(conn, sid)
            fip = await floating_ips.lock_address(conn, msg.project_id, address)
            if fip is None:
                raise FloatingIpNotFound(f"Floating IP not found for address {msg.address}.")
            # The server's ports on its project's networks (the API checked the
            # server is the caller's; this keeps another project's out anyway).
            mine = await ports.of_server(conn, msg.server_id)
            owned = await networks.owned_ids(conn, msg.project_id, [p.network_id for p in mine])
            mine = [p for p in mine if p.network_id in owned]
            if not mine:
                raise NoFixedIpForServer(
                    f"No fixed IPs associated to instance {msg.server_id}; "
                    "wait until its networking is done.")
            if msg.fixed_address is not None:
                wanted = _canonical(msg.fixed_address)
                port = next((p for p in mine if wanted and p.address == wanted), None)
                if port is None:
                    raise FixedAddressNotOnServer(
                        f"Specified fixed address {msg.fixed_address} not assigned to "
                        f"instance {msg.server_id}.")
            else:
                # As Nova: the first fixed address when several could do.
                port = mine[0]
            if fip.server_id == msg.server_id and fip.fixed_address == port.address:
                return fip
            # As Nova (nova-network's and Neutron's associate_floating_ip): an
            # address on another server is taken off it and mapped here, and
            # that server's addresses cache is written again too.
            moved_from = fip.server_id if fip.server_id != msg.server_id else None
            fip = await floating_ips.associate(conn, address, msg.server_id, port.network_id,
                                               port.address)
            await addresses.refresh(conn, msg.server_id)
            if moved_from is not None:
                await addresses.refresh(conn, moved_from)
        log.info("network.floating_ip_associated", server_id=str(msg.server_id),
                 address=address, fixed_address=port.address,
                 moved_from=str(moved_from) if moved_from else None)
        return fip

    async def disassociate(self, msg: DisassociateFloatingIp) -> FloatingIp:
        address = _canonical(msg.address)
        if address is None:
            raise FloatingIpNotFound(f"Floating IP not found for address {msg.address}.")
        async with self._pool.acquire() as conn, conn.transaction():
            await floating_ips.lock_project(conn, msg.project_id)
            await ports.lock_server(conn, msg.server_id)
            fip = await floating_ips.lock_address(conn, msg.project_id, address)
            if fip is None:
                raise FloatingIpNotFound(f"Floating IP not found for address {msg.address}.")
            if fip.server_id != msg.server_id:
                raise FloatingIpNotAssociated(
                    f"Floating IP {address} is not associated with instance {msg.server_id}.")
            fip = await floating_ips.disassociate(conn, address)
            await addresses.refresh(conn, msg.server_id)
        log.info("network.floating_ip_disassociated", server_id=str(msg.server_id),
                 address=address)
        return fip


def _canonical(address: str) -> str | None:
    """An IPv4 address as PostgreSQL's host() writes it; None if it is none."""
    try:
        return str(ipaddress.IPv4Address(address.strip()))
    except ValueError:
        return None


def serve(worker: Worker, settings: NetworkSettings) -> None:
    """Serve ``network.floating`` and sweep stale fixed IP reservations on ``worker``."""
    worker.serve(QUEUE, FloatingIpMessage, FloatingIpHandler(worker.pool, settings))

    async def sweep() -> None:
        async with worker.pool.acquire() as conn:
            await ports.sweep_reservations(conn, older_than_s=settings.reservation_ttl_s)

    worker.every(settings.reservation_sweep_interval_s, sweep, "fixed_ip_reservation_sweep",
                 once=True)
