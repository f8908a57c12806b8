"""Metrics read at scrape time from PostgreSQL and RabbitMQ (served by the API).

They describe the cloud, not the process, so one service reports them: the API
(``services.api.app``). With several API replicas each reports the same values;
aggregate them with ``max by (status)`` rather than ``sum``.

Each read is cheap: servers by status is one ``GROUP BY`` over the live rows,
hosts one scan of ``compute_hosts``, queue depths one passive declare per queue
(the broker answers with the queue's message and consumer counts without
creating anything). ``shared.metrics.refresh`` bounds each with a timeout.

With a thousand compute hosts there are two thousand queues to ask about, most
of them dead-letter queues that do not exist (one is made at a queue's first
dead letter), and each of those costs a closed channel and a new one: about
5 s and 1.6 CPU-s a scrape, past the timeout. So the declares run on
``QUEUE_LANES`` channels at once, and beside the services' own queues (asked at
every scrape) they are asked about in turn, the longest unasked first:
``QUEUES_IN_TURN`` of the hosts' queues and the dead-letter queues found, and
``MISSING_IN_TURN`` of the dead-letter queues not known to exist; a queue not
asked shows its depth when last asked. With a thousand hosts a host queue's
figure is then up to four scrapes old and a new dead-letter queue shows up to
twenty scrapes late (each process's ``nimbus_rpc_dead_lettered_total`` counts
its dead letters at once); with the three hosts of a default cloud every queue
is asked at every scrape.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection
from prometheus_client import Gauge

from shared.contracts.queues import SERVICE_QUEUES, all_queues
from shared.metrics import Refresher
from shared.rpc.server import DEAD_LETTER_SUFFIX, dead_letter_queue
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


QUEUE_LANES = 8
"""Channels the passive declares of one scrape run on at once."""

QUEUES_IN_TURN = 250
"""Queues known to exist, beside the services' own, that one scrape asks about."""

MISSING_IN_TURN = 50
"""Dead-letter queues not known to exist that one scrape asks about."""


class _QueueDepths:
    """What the queue refresher knows between scrapes (see the module docstring)."""

    def __init__(self, connection: AbstractConnection, pool: asyncpg.Pool) -> None:
        self._connection = connection
        self._pool = pool
        self._depths: dict[str, tuple[int, int]] = {}
        """Each queue's messages and consumers when last asked, if it existed."""
        self._known: dict[str, None] = {}
        """Queues asked about in turn, the longest unasked first: hosts' queues and
        the dead-letter queues found."""
        self._missing: dict[str, None] = {}
        """Dead-letter queues not known to exist, likewise."""

    async def refresh(self) -> None:
        names = await _queue_names(self._pool)
        current = set(names)
        for line in (self._known, self._missing):
            for name in [n for n in line if n not in current]:
                del line[name]
        for name in names:
            if name not in SERVICE_QUEUES and name not in self._known \
                    and name not in self._missing:
                line = self._missing if name.endswith(DEAD_LETTER_SUFFIX) else self._known
                line[name] = None
        todo = [*SERVICE_QUEUES, *_turn(self._known, QUEUES_IN_TURN),
                *_turn(self._missing, MISSING_IN_TURN)]
        await asyncio.gather(*(self._lane(todo[i::QUEUE_LANES]) for i in range(QUEUE_LANES)))
        QUEUE_MESSAGES.clear()
        QUEUE_CONSUMERS.clear()
        for name in names:
            if (depth := self._depths.get(name)) is not None:
                QUEUE_MESSAGES.labels(name).set(depth[0])
                QUEUE_CONSUMERS.labels(name).set(depth[1])

    async def _lane(self, names: Sequence[str]) -> None:
        """Ask about ``names`` one after the other on a channel of this lane's, noting
        each answer as it comes (a scrape cut short by the timeout still moves the
        lines on)."""
        channel: AbstractChannel | None = None
        try:
            for name in names:
                if channel is None or channel.is_closed:
                    channel = await self._connection.channel(publisher_confirms=False)
                dead = name.endswith(DEAD_LETTER_SUFFIX)
                try:
                    declared = await channel.declare_queue(name, passive=True)
                except aio_pika.exceptions.ChannelNotFoundEntity:
                    self._depths.pop(name, None)
                    if dead and name in self._known:  # gone since (dead letters purged)
                        del self._known[name]
                        self._missing[name] = None
                    continue
                result = declared.declaration_result
                self._depths[name] = (result.message_count or 0, result.consumer_count or 0)
                if dead and name in self._missing:
                    del self._missing[name]
                    self._known[name] = None
        finally:
            if channel is not None and not channel.is_closed:
                await channel.close()


def _turn(line: dict[str, None], count: int) -> list[str]:
    """The first ``count`` of ``line``, moved to its end."""
    taken = list(itertools.islice(line, count))
    for name in taken:
        del line[name]
        line[name] = None
    return taken


def queue_refresher(connection: AbstractConnection, pool: asyncpg.Pool) -> Refresher:
    """Depths of the services', the hosts' and their dead-letter queues. A queue that
    does not exist (no dead letter yet) is left out: a passive declare of it fails,
    closing the channel, so the next queue gets a fresh one."""
    return _QueueDepths(connection, pool).refresh
