"""The scheduler worker: one consumer of the ``scheduler`` queue, and the sweep.

Several scheduler processes may serve the queue at once; they share nothing
but the database, where claims keep them from overcommitting a host.
"""

from __future__ import annotations

from services.scheduler.build import BuildScheduler
from services.scheduler.settings import Settings
from services.scheduler.sweep import BuildSweeper
from shared.contracts.network import NetworkClient
from shared.contracts.scheduler import QUEUE, SchedulerMessage
from shared.worker import Worker


async def create_worker(settings: Settings) -> Worker:
    """Open the worker's connections and register the queue it serves."""
    worker = Worker("scheduler", database=settings.database, amqp=settings.amqp,
                    health=settings.health, shutdown=settings.shutdown)
    await worker.open()
    relay = worker.with_outbox()  # reschedules go out through the outbox
    scheduler = BuildScheduler(worker.pool, worker.rpc, settings.scheduler,
                               outages=worker.outages)
    worker.serve(QUEUE, SchedulerMessage, scheduler.handle,
                 prefetch=settings.scheduler.max_concurrent_builds, give_up=scheduler.give_up)
    sweeper = BuildSweeper(worker.pool, settings.scheduler,
                           NetworkClient(worker.rpc, request_id=None),
                           relay=relay, outages=worker.outages)
    worker.every(settings.scheduler.sweep_interval_s, sweeper.sweep, "build-sweep",
                 once=True)
    worker.health_info(queue=QUEUE)
    return worker


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT."""
    worker = await create_worker(settings)
    await worker.run()
