"""The network service's factory: a connected Worker serving the ``network`` queue."""

from __future__ import annotations

from shared.contracts.network import QUEUE, NetworkMessage
from shared.worker import Worker
from services.network.handler import NetworkHandler
from services.network.settings import Settings

SERVICE = "network"


async def create_worker(settings: Settings) -> Worker:
    """Open the database pool and broker connection and register the RPC server.

    The caller runs it with ``await worker.run()`` (until SIGTERM or
    ``worker.stop()``).
    """
    worker = Worker(SERVICE, database=settings.database, amqp=settings.amqp,
                    health=settings.health)
    await worker.open()
    worker.serve(QUEUE, NetworkMessage, NetworkHandler(worker.pool, settings.network))
    worker.health_info(queue=QUEUE)
    return worker
