"""Opening the broker connection shared by a service's clients and servers."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection


async def connect(url: str, *, reconnect_interval_s: float = 1.0) -> AbstractRobustConnection:
    """A robust connection: it reconnects (every ``reconnect_interval_s`` while the
    broker is away) and re-declares its channels, queues and consumers by itself."""
    return await aio_pika.connect_robust(url, client_properties={"connection_name": "nimbus"},
                                         reconnect_interval=reconnect_interval_s)
