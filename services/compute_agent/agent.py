"""The compute agent: serves its host's queue, keeps its host row alive, and
reconciles what its hypervisor runs with the database.

One agent process may simulate many hosts (``[compute] hosts``, fake driver only),
as Kolla runs many fake nova-computes on one machine: each host has its own
driver, :class:`ComputeAgent` and queue, while the process's one worker (one
database pool, one broker connection) serves them all, their heartbeats go in one
statement (:func:`report_hosts`) and one reconcile loop covers them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import msgspec
import structlog

from services.compute_agent import runner
from services.compute_agent import volumes as volume_ops
from services.compute_agent.drivers import DriverContext, HypervisorDriver
from services.compute_agent.drivers import make_driver as make_named_driver
from services.compute_agent.operations import CALLS, OPERATIONS
from services.compute_agent.reconcile import Reconciler
from services.compute_agent.settings import Settings
from shared.contracts.compute import ComputeMessage, host_queue
from shared.contracts.network import NetworkClient
from shared.db import hosts
from shared.errors import NotImplementedFault
from shared.image_store import ImageStore
from shared.volume_store import VolumeStore
from shared.rpc.server import CallContext
from shared.worker import Worker

log = structlog.get_logger(__name__)


def host_names(base: str, count: int) -> list[str]:
    """The hosts one agent process simulates: ``base`` itself when it is one, else
    ``<base>-0001`` .. ``<base>-<count>`` (four digits, more past 9999)."""
    if count == 1:
        return [base]
    width = max(4, len(str(count)))
    return [f"{base}-{i:0{width}d}" for i in range(1, count + 1)]


def make_driver(settings: Settings, host: str | None = None, *,
                image_store: ImageStore | None = None) -> HypervisorDriver:
    """The driver ``NIMBUS_COMPUTE_DRIVER`` names (``drivers.DRIVERS``), for ``host``
    (default: ``[compute] host``)."""
    context = DriverContext(host=host or settings.compute.host,
                            image_store=image_store or ImageStore.from_settings(settings.images),
                            shutdown_timeout_s=settings.compute.shutdown_timeout_s,
                            volume_store=VolumeStore.from_settings(settings.volumes))
    return make_named_driver(settings.compute.driver, settings, context)


class ComputeAgent:
    """Owns the guests of one host. Operations on one server run one at a time."""

    def __init__(self, settings: Settings, worker: Worker, driver: HypervisorDriver, *,
                 host: str | None = None, image_store: ImageStore | None = None) -> None:
        self.settings = settings
        self.worker = worker
        self.driver = driver
        self.host = host or settings.compute.host
        self.image_store = image_store or ImageStore.from_settings(settings.images)
        # server id -> (lock, how many operations hold or wait for it)
        self._locks: dict[UUID, tuple[asyncio.Lock, int]] = {}

    def network_client(self, request_id: str | None) -> NetworkClient:
        """The network service, for work done on behalf of ``request_id``."""
        return NetworkClient(self.worker.rpc, request_id=request_id,
                             timeout=self.settings.compute.network_timeout_s)

    def busy(self, server_id: UUID) -> bool:
        """Whether an operation on the server runs (or waits) in this agent now."""
        return server_id in self._locks

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

    async def capacity(self) -> hosts.HostCapacity:
        """What this host offers, as its heartbeat reports it."""
        res = await self.driver.host_resources()
        c = self.settings.compute
        return hosts.HostCapacity(
            host=self.host, availability_zone=c.az, total_ram_mb=res.ram_mb,
            total_disk_gb=res.disk_gb, total_vcpus=res.vcpus, ram_ratio=c.ram_ratio,
            disk_ratio=c.disk_ratio, cpu_ratio=c.cpu_ratio, hypervisor_type=self.driver.name,
            capabilities=msgspec.structs.asdict(self.driver.capabilities))

    async def report(self, *, starting: bool = False) -> None:
        """This host's heartbeat alone (see :func:`report_hosts`)."""
        await report_hosts(self.worker, [self], starting=starting)

    async def handle(self, msg: ComputeMessage, ctx: CallContext) -> object:
        """Run the operation (or answer the call) the message's type names."""
        if (operation := OPERATIONS.get(type(msg))) is not None:
            await runner.run(self, operation(msg), msg, ctx)
            return None
        if (call := CALLS.get(type(msg))) is not None:
            return await call(self, msg)
        if (volume_op := volume_ops.HANDLERS.get(type(msg))) is not None:
            await volume_op(self, msg, ctx)
            return None
        raise NotImplementedFault(f"This compute agent cannot handle {type(msg).__name__}.")

    async def give_up(self, msg: Any, ctx: CallContext, exc: BaseException) -> None:
        """A message's retries ran out: end its operation with a fault saying why."""
        if (operation := OPERATIONS.get(type(msg))) is not None:
            await runner.give_up(self, operation(msg), msg, ctx, exc,
                                 self.settings.amqp.retry_deadline_s)
        elif type(msg) in volume_ops.HANDLERS:
            await volume_ops.give_up(self, msg, ctx, exc, self.settings.amqp.retry_deadline_s)


async def report_hosts(worker: Worker, agents: Sequence[ComputeAgent], *,
                       starting: bool = False) -> None:
    """The heartbeat of every host of this process, in one statement. A host whose
    driver cannot say what it has is left out (its row ages until it can); if none
    can, the error is raised."""
    caps: list[hosts.HostCapacity] = []
    error: Exception | None = None
    for agent in agents:
        try:
            caps.append(await agent.capacity())
        except Exception as exc:
            error = exc
            log.warning("compute.capacity_failed", host=agent.host, error=str(exc))
    if not caps and error is not None:
        raise error
    async with worker.pool.acquire() as conn:
        await hosts.report_many(conn, caps, starting=starting)


def _host_range(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


async def run(settings: Settings) -> None:
    c = settings.compute
    if c.hosts > 1 and c.driver != "fake":
        raise SystemExit(f"NIMBUS_COMPUTE_HOSTS={c.hosts}: only the fake driver simulates "
                         f"several hosts in one agent; the {c.driver} driver runs one host "
                         f"per agent (NIMBUS_COMPUTE_HOSTS=1)")
    names = host_names(c.host, c.hosts)
    worker = Worker(f"compute-agent:{c.host}", database=settings.database,
                    amqp=settings.amqp, health=settings.health, shutdown=settings.shutdown)
    image_store = ImageStore.from_settings(settings.images)
    drivers = [make_driver(settings, name, image_store=image_store) for name in names]
    for driver in drivers:  # a hypervisor that cannot be reached: the agent does not start
        await driver.init_host()

    async def cleanup() -> None:
        for driver in drivers:
            await driver.cleanup()

    worker.on_stop(cleanup)
    await worker.open()
    agents = [ComputeAgent(settings, worker, driver, host=name, image_store=image_store)
              for name, driver in zip(names, drivers)]
    await report_hosts(worker, agents, starting=True)  # registered before the queues are served
    # Servers left mid-operation by an earlier run of this agent are not touched
    # at start: their messages, never acked, come again. The reconcile loop runs
    # at once (worker.every) and deals with what the hypervisor did meanwhile.
    worker.with_outbox()  # the reconcile loop's stops go out through the outbox
    reconciler = Reconciler(agents, settings.reconcile)
    for agent in agents:
        worker.serve(host_queue(agent.host), ComputeMessage, agent.handle,
                     give_up=agent.give_up, shared_channel=len(agents) > 1)
    worker.every(c.heartbeat_interval_s, lambda: report_hosts(worker, agents), "heartbeat")
    worker.every(settings.reconcile.interval_s, reconciler.reconcile, "reconcile")
    worker.health_info(host=_host_range(names), hosts=len(names), availability_zone=c.az)
    await worker.run()
