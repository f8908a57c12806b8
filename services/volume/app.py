"""The volume service's factory: a connected Worker serving the ``volume`` queue,
with its backend, its volume types written, and the sweep."""

from __future__ import annotations

from services.volume.backends import BackendContext, make_backend
from services.volume.handler import VolumeHandler
from services.volume.settings import Settings
from services.volume.sweep import VolumeSweeper
from shared.contracts.volume import QUEUE, VolumeMessage
from shared.db import volumes
from shared.image_store import ImageStore
from shared.volume_store import VolumeStore
from shared.worker import Worker

SERVICE = "volume"


async def create_worker(settings: Settings) -> Worker:
    """Open the database pool and broker connection, write the configured volume
    types and register the RPC server and the sweep.

    The caller runs it with ``await worker.run()`` (until SIGTERM or
    ``worker.stop()``).
    """
    s = settings.volume
    store = VolumeStore.from_settings(settings.volumes)
    backend = make_backend(s.backend, BackendContext(store=store,
                                                     tool_timeout_s=s.transient_timeout_s))
    worker = Worker(SERVICE, database=settings.database, amqp=settings.amqp,
                    health=settings.health, shutdown=settings.shutdown)
    await worker.open()
    async with worker.pool.acquire() as conn, conn.transaction():
        await volumes.sync_types(conn, s.volume_types())
    handler = VolumeHandler(worker.pool, backend, ImageStore.from_settings(settings.images))
    worker.serve(QUEUE, VolumeMessage, handler, give_up=handler.give_up)
    sweeper = VolumeSweeper(worker.pool, s, backend, outages=worker.outages)
    worker.every(s.sweep_interval_s, sweeper.sweep, "volume-sweep", once=True)
    worker.health_info(queue=QUEUE, backend=backend.name, store=store.root)
    return worker
