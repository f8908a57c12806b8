"""Every queue the services consume: the one list of them, for whatever walks them
all (the dead-letter command, the queue-depth metrics)."""

from __future__ import annotations

import asyncpg

from shared.contracts import floating_ips, network, scheduler, security_groups, volume
from shared.contracts.compute import host_queue

SERVICE_QUEUES = (scheduler.QUEUE, network.QUEUE, floating_ips.QUEUE, security_groups.QUEUE,
                  volume.QUEUE)
"""The services' own queues; each compute host has one more (``compute.<host>``)."""

_HOSTS = "SELECT host FROM compute_hosts ORDER BY host"


async def all_queues(conn: asyncpg.Connection) -> list[str]:
    """The services' queues, then each known compute host's."""
    hosts = [r["host"] for r in await conn.fetch(_HOSTS)]
    return [*SERVICE_QUEUES, *(host_queue(h) for h in hosts)]
