"""Opening the broker connection shared by a service's clients and servers."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection


async def connect(url: str) -> AbstractRobustConnection:
    """A robust connection: it reconnects and re-declares consumers by itself."""
    return await aio_pika.connect_robust(url, client_properties={"connection_name": "nimbus"})
