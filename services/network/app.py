"""The network service's factory: a connected Worker serving the ``network`` queue."""

from __future__ import annotations

from shared.contracts import security_groups as security_contract
from shared.contracts.network import QUEUE, NetworkMessage
from shared.worker import Worker
from services.network import floating_handler
from services.network.handler import NetworkHandler
from services.network.security_handler import SecurityGroupHandler
from services.network.settings import Settings

SERVICE = "network"


async def create_worker(settings: Settings) -> Worker:
    """Open the database pool and broker connection and register the RPC server.

    The caller runs it with ``await worker.run()`` (until SIGTERM or
    ``worker.stop()``).
    """
    worker = Worker(SERVICE, database=settings.database, amqp=settings.amqp,
                    health=settings.health, shutdown=settings.shutdown)
    await worker.open()
    worker.serve(QUEUE, NetworkMessage, NetworkHandler(worker.pool, settings.network))
    floating_handler.serve(worker, settings.network)  # network.floating, reservation sweep
    worker.serve(security_contract.QUEUE, security_contract.SecurityMessage,
                 SecurityGroupHandler(worker.pool))
    worker.health_info(queue=QUEUE)
    return worker
