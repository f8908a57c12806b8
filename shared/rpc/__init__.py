"""RPC over RabbitMQ (aio-pika): ``call`` with a reply and a timeout, ``cast``.

Queues are named after the service (``scheduler``, ``network``) or the host
(``compute.<host>``); all are durable and every publish waits for the broker's
confirm, so a message the API accepted survives a broker restart and a worker
crash (workers ack only after handling). Messages are msgspec Structs from
``shared.contracts``; the request id rides in the AMQP headers.
"""

from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.server import RpcServer

__all__ = ["RpcClient", "RpcServer", "connect"]
