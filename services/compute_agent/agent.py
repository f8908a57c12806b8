"""The compute agent: serves its host's queue and keeps its host row alive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import structlog

from services.compute_agent.drivers import HypervisorDriver
from services.compute_agent.drivers.fake import FakeDriver
from services.compute_agent.recover import recover
from services.compute_agent.settings import Settings
from shared.contracts.compute import (
    ComputeMessage,
    host_queue,
)
from shared.contracts.network import NetworkClient
from shared.db import hosts
from shared.errors import NotImplementedFault
from shared.worker import Worker

log = structlog.get_logger(__name__)


def make_driver(settings: Settings) -> HypervisorDriver:
    if settings.compute.driver == "fake":
        return FakeDriver(settings.fake, host=settings.compute.host)
    raise SystemExit(f"unknown hypervisor driver {settings.compute.driver!r}")


class ComputeAgent:
    """Owns the guests of one host. Operations on one server run one at a time."""

    def __init__(self, settings: Settings, worker: Worker, driver: HypervisorDriver) -> None:
        self.settings = settings
        self.worker = worker
        self.driver = driver
        self.host = settings.compute.host
        self.network = NetworkClient(worker.rpc, timeout=settings.compute.network_timeout_s)
        # server id -> (lock, how many operations hold or wait for it)
        self._locks: dict[UUID, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def serialized(self, server_id: UUID) -> AsyncIterator[None]:
        """Run one operation at a time per server; the lock goes when nobody needs it."""
        lock, users = self._locks.get(server_id, (asyncio.Lock(), 0))
        self._locks[server_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[server_id]
            if users == 1:
                del self._locks[server_id]
            else:
                self._locks[server_id] = (lock, users - 1)

    async def report(self, *, starting: bool = False) -> None:
        res = await self.driver.host_resources()
        c = self.settings.compute
        async with self.worker.pool.acquire() as conn:
            await hosts.report(conn, hosts.HostCapacity(
                host=self.host, availability_zone=c.az, total_ram_mb=res.ram_mb,
                total_disk_gb=res.disk_gb, total_vcpus=res.vcpus, ram_ratio=c.ram_ratio,
                disk_ratio=c.disk_ratio, cpu_ratio=c.cpu_ratio), starting=starting)

    async def handle(self, msg: ComputeMessage) -> object:
        """Run the operation module registered for the message's type (see ``operations``)."""
        from services.compute_agent.operations import HANDLERS
        handler = HANDLERS.get(type(msg))
        if handler is None:
            raise NotImplementedFault(f"This compute agent cannot handle {type(msg).__name__}.")
        return await handler(self, msg)


async def run(settings: Settings) -> None:
    worker = Worker(f"compute-agent:{settings.compute.host}", database=settings.database,
                    amqp=settings.amqp, health=settings.health)
    await worker.open()
    agent = ComputeAgent(settings, worker, make_driver(settings))
    await agent.report(starting=True)  # registered before the queue is served
    # Servers left mid-action by an earlier run of this agent, before new work.
    await recover(agent)
    worker.serve(host_queue(agent.host), ComputeMessage, agent.handle)
    worker.every(settings.compute.heartbeat_interval_s, agent.report, "heartbeat")
    worker.health_info(host=agent.host, availability_zone=settings.compute.az)
    await worker.run()
