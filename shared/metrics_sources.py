"""Metrics read at scrape time from PostgreSQL and RabbitMQ (served by the API).

They describe the cloud, not the process, so one service reports them: the API
(``services.api.app``). With several API replicas each reports the same values;
aggregate them with ``max by (status)`` rather than ``sum``.

Each read is cheap: servers by status is one ``GROUP BY`` over the live rows,
hosts one scan of ``compute_hosts``, queue depths one passive declare per queue
(the broker answers with the queue's message and consumer counts without
creating anything). ``shared.metrics.refresh`` bounds each with a timeout.
"""

from __future__ import annotations

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection
from prometheus_client import Gauge

from shared.contracts.queues import all_queues
from shared.metrics import Refresher
from shared.rpc.server import dead_letter_queue
from shared.states import api_status

SERVERS = Gauge("nimbus_servers", "Servers (not deleted) by API status", ["status"])
SERVERS_OLDEST = Gauge("nimbus_servers_oldest_seconds", "Seconds since the least recently "
                       "updated server in each status last changed (a stuck build shows "
                       "as a BUILD age that keeps growing)", ["status"])
HOST_HEARTBEAT_AGE = Gauge("nimbus_compute_host_heartbeat_age_seconds",
                           "Seconds since each compute host's last heartbeat",
                           ["host", "disabled"])
QUEUE_MESSAGES = Gauge("nimbus_queue_messages", "Messages ready in a RabbitMQ queue",
                       ["queue"])
QUEUE_CONSUMERS = Gauge("nimbus_queue_consumers", "Consumers of a RabbitMQ queue", ["queue"])

_SERVERS_BY_STATE = """
SELECT vm_state, task_state, count(*) AS n,
       extract(epoch FROM now() - min(updated_at))::float8 AS oldest_s
  FROM servers WHERE deleted_at IS NULL
 GROUP BY vm_state, task_state"""

_HOSTS = """
SELECT host, disabled, extract(epoch FROM now() - last_heartbeat)::float8 AS age_s
  FROM compute_hosts"""

def database_refresher(pool: asyncpg.Pool) -> Refresher:
    """Servers by status and hosts' heartbeat ages, replaced whole at each scrape (a
    status no server has any more drops out rather than keeping its last count)."""
    async def refresh() -> None:
        async with pool.acquire() as conn:
            by_state = await conn.fetch(_SERVERS_BY_STATE)
            hosts = await conn.fetch(_HOSTS)
        counts: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for row in by_state:
            status = api_status(row["vm_state"], row["task_state"])
            counts[status] = counts.get(status, 0) + row["n"]
            oldest[status] = max(oldest.get(status, 0.0), row["oldest_s"])
        SERVERS.clear()
        SERVERS_OLDEST.clear()
        for status, n in counts.items():
            SERVERS.labels(status).set(n)
            SERVERS_OLDEST.labels(status).set(oldest[status])
        HOST_HEARTBEAT_AGE.clear()
        for row in hosts:
            HOST_HEARTBEAT_AGE.labels(row["host"], str(row["disabled"]).lower()).set(row["age_s"])
    return refresh


async def _queue_names(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        queues = await all_queues(conn)
    return [*queues, *(dead_letter_queue(q) for q in queues)]


def queue_refresher(connection: AbstractConnection, pool: asyncpg.Pool) -> Refresher:
    """Depths of the services', the hosts' and their dead-letter queues. A queue that
    does not exist (no dead letter yet) is left out: a passive declare of it fails,
    closing the channel, so the next queue gets a fresh one."""
    async def refresh() -> None:
        names = await _queue_names(pool)
        channel: AbstractChannel | None = None
        depths: dict[str, tuple[int, int]] = {}
        try:
            for name in names:
                if channel is None or channel.is_closed:
                    channel = await connection.channel(publisher_confirms=False)
                try:
                    declared = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    continue
                result = declared.declaration_result
                depths[name] = (result.message_count or 0, result.consumer_count or 0)
        finally:
            if channel is not None and not channel.is_closed:
                await channel.close()
        QUEUE_MESSAGES.clear()
        QUEUE_CONSUMERS.clear()
        for name, (messages, consumers) in depths.items():
            QUEUE_MESSAGES.labels(name).set(messages)
            QUEUE_CONSUMERS.labels(name).set(consumers)
    return refresh
