"""The network service's RPC handler: one method per message of ``shared.contracts.network``."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import structlog

from shared.contracts.common import Port
from shared.rpc.server import CallContext
from shared.contracts.network import (
    AllocatePorts,
    DeallocatePorts,
    EnsureDefaultNetwork,
    NetworkMessage,
    ReserveFixedIps,
)
from services.network import addresses, floating_ips, growth, networks, ports, security_groups
from services.network.settings import NetworkSettings

log = structlog.get_logger(__name__)


class NetworkHandler:
    """Serves the ``network`` queue; each method is idempotent (messages may be redelivered)."""

    def __init__(self, pool: asyncpg.Pool, settings: NetworkSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._grow = growth.Policy(supernet=settings.supernet, prefixlen=settings.default_prefixlen,
                                   max_subnets=settings.max_subnets_per_network)
        self._next_fit = ports.NextFit()

    async def __call__(self, msg: NetworkMessage, ctx: CallContext) -> list[Port] | int | UUID:
        match msg:
            case AllocatePorts():
                return await self.allocate_ports(msg)
            case DeallocatePorts():
                return await self.deallocate_ports(msg)
            case ReserveFixedIps():
                return await self.reserve_fixed_ips(msg)
            case EnsureDefaultNetwork():
                return await self.ensure_default_network(msg)
        raise TypeError(f"unexpected message {type(msg).__name__}")

    async def allocate_ports(self, msg: AllocatePorts) -> list[Port]:
        """The server's ports: the ones it has, else one new port per network asked for
        (the project's default network when none is named), with the fixed IP a
        request names. The server's addresses cache is written in the same
        transaction.

        A full default network grows by a subnet (``services.network.growth``).
        Raises BadRequest when a network is not the project's or a named fixed IP
        is not to be had, NoMoreFixedIps when a network is full and cannot grow;
        nothing is allocated then.
        """
        requests = msg.port_requests()
        async with self._pool.acquire() as conn:
            # First use of a project: its default group and (when it is what the
            # server asks for) its default network, each committed on its own so
            # a failure further on does not undo them for the next request.
            async with conn.transaction():
                await security_groups.ensure_default(conn, msg.project_id)
            default = None
            if not requests:
                async with conn.transaction():
                    default = await networks.ensure_default(
                        conn, msg.project_id, supernet=self._settings.supernet,
                        name=self._settings.default_network_name,
                        prefixlen=self._settings.default_prefixlen)
            async with conn.transaction():
                await ports.lock_server(conn, msg.server_id)
                if existing := await ports.of_server(conn, msg.server_id):
                    await ports.move_to_host(conn, msg.server_id, msg.host)
                    await addresses.refresh(conn, msg.server_id)
                    log.info("network.ports_existing", server_id=str(msg.server_id),
                             count=len(existing))
                    return existing
                wanted = ([default] if default is not None
                          else await networks.get_owned(conn, msg.project_id,
                                                        [r.network_id for r in requests]))
                fixed = [r.fixed_ip for r in requests] if requests else None
                made = await ports.allocate(conn, msg.server_id, msg.host, wanted,
                                            mac_prefix=self._settings.mac_prefix, fixed=fixed,
                                            grow=self._grow, next_fit=self._next_fit)
                await addresses.refresh(conn, msg.server_id)
        log.info("network.ports_allocated", server_id=str(msg.server_id), host=msg.host,
                 addresses=[p.address for p in made])
        return made

    async def ensure_default_network(self, msg: EnsureDefaultNetwork) -> UUID:
        """The project's default network's id, made now if the project has none."""
        async with self._pool.acquire() as conn, conn.transaction():
            network = await networks.ensure_default(
                conn, msg.project_id, supernet=self._settings.supernet,
                name=self._settings.default_network_name,
                prefixlen=self._settings.default_prefixlen)
        return network.id

    async def deallocate_ports(self, msg: DeallocatePorts) -> int:
        """Free the server's ports, reserved and held addresses, and take its floating
        IPs off it (they stay the project's); the number of ports freed (0 if none
        were left). With ``keep_fixed``, only reservations are freed (their number)
        and the floating IPs taken off: the ports stay until the guest is reaped."""
        async with self._pool.acquire() as conn, conn.transaction():
            await ports.lock_server(conn, msg.server_id)
            if msg.keep_fixed:
                freed = await ports.free_reservations(conn, msg.server_id)
            else:
                freed = await ports.deallocate(conn, msg.server_id)
            floating = await floating_ips.disassociate_server(conn, msg.server_id)
            await addresses.refresh(conn, msg.server_id)
        log.info("network.ports_deallocated", server_id=str(msg.server_id), count=freed,
                 floating_ips_disassociated=floating, fixed_kept=msg.keep_fixed)
        return freed

    async def reserve_fixed_ips(self, msg: ReserveFixedIps) -> int:
        """Reserve the fixed IPs create server names, before the server is written
        (all or nothing); how many are reserved."""
        named = [r for r in msg.requests if r.fixed_ip]
        if not named:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            await ports.lock_server(conn, msg.server_id)
            nets = await networks.get_owned(conn, msg.project_id, [r.network_id for r in named])
            count = await ports.reserve(conn, msg.server_id,
                                        [(net, r.fixed_ip or "") for net, r in zip(nets, named)])
        log.info("network.fixed_ips_reserved", server_id=str(msg.server_id),
                 addresses=[r.fixed_ip for r in named])
        return count
