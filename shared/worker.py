"""The life of a worker process: connect, serve queues, run periodic tasks, stop.

The scheduler, the network service and each compute agent are built on
:class:`Worker`: it opens the database pool and the broker connection, applies
migrations (once, under a lock), starts the RPC servers and periodic tasks the
service registers, serves ``/healthz``, and on SIGTERM/SIGINT stops consuming,
lets handlers in flight finish for ``[shutdown] grace_s`` and closes everything;
messages still being handled then, or being retried, are left unacked for the
next consumer (``shared.rpc.server``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aio_pika.abc import AbstractRobustConnection

from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, ShutdownSettings
from shared.db.migrate import apply_migrations
from shared.db.pool import create_pool
from shared.health import broker_check, database_check, start_health_server
from shared.leader import Leadership
from shared.outbox import Relay
from shared.retry import OutageClock, describe, is_outage, is_transient
from shared.rpc import RpcClient, RpcServer, connect
from shared.rpc.server import GiveUp, Handler

log = structlog.get_logger(__name__)

CONSUMERS_PER_CHANNEL = 32
"""Queues served with ``shared_channel`` share one broker channel per this many: a
channel runs its declares one at a time, so a thousand queues on one channel take
seconds to start, on a channel each a thousand channels; 32 a channel start a
thousand in about a second."""

OUTAGE_PROBE_S = 2.0
"""Seconds between two checks that the database answers (see ``Worker.outages``)."""


class Worker:
    def __init__(self, name: str, *, database: DatabaseSettings, amqp: AmqpSettings,
                 health: HealthSettings, shutdown: ShutdownSettings = ShutdownSettings()
                 ) -> None:
        self.name = name
        self._database = database
        self._amqp = amqp
        self._health = health
        self._shutdown = shutdown
        self.pool: asyncpg.Pool
        self.connection: AbstractRobustConnection
        self.rpc: RpcClient
        self._servers: list[RpcServer] = []
        self._sharing: list[RpcServer] = []
        """Of ``_servers``, those that share channels (``serve(shared_channel=True)``)."""
        self._channels: list[Any] = []
        self._periodic: list[tuple[float, Callable[[], Awaitable[None]], str]] = []
        self.leaders: list[Leadership] = []
        """One per cluster-wide periodic task (``every(..., once=True)``)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._health_extra: dict[str, object] = {}
        self._stopping = asyncio.Event()
        self.started = asyncio.Event()
        """Set once every queue is served (for whoever starts a worker in-process)."""
        self.relay: Relay | None = None
        self.outages = OutageClock()
        """When this worker last failed to reach the database or broker (its
        handlers and periodic tasks tell it), for decisions that need a fresh view."""

    async def open(self) -> None:
        await apply_migrations(self._database.url)
        self.pool = await create_pool(self._database)
        self.connection = await connect(self._amqp.url)
        self.rpc = RpcClient(self.connection, timeout=self._amqp.rpc_timeout_s,
                             publish_timeout=self._amqp.publish_timeout_s)
        await self.rpc.start()
        # A lost broker connection is an outage this worker saw, even when no
        # message happened to fail meanwhile.
        self.connection.close_callbacks.add(lambda *_: self.outages.note())
        self.connection.reconnect_callbacks.add(lambda *_: self.outages.note())
        # So is a database blip between two of its periodic tasks: a probe every
        # OUTAGE_PROBE_S sees it (a view of heartbeats must not outlive one).
        self.every(OUTAGE_PROBE_S, self._probe_database, "database-probe")

    def serve(self, queue: str, messages: Any, handler: Handler, *, prefetch: int = 16,
              give_up: GiveUp | None = None, shared_channel: bool = False) -> None:
        """Serve ``queue`` with the shared delivery rules (``shared.rpc.server``).

        ``shared_channel``: on a broker channel shared with other such queues
        (``CONSUMERS_PER_CHANNEL``), for a worker serving hundreds of queues; the
        prefetch still counts per queue."""
        server = RpcServer(self.connection, queue, messages, handler,
                           prefetch=prefetch, policy=self._amqp.retry_policy(),
                           give_up=give_up, on_transient=self.outages.note,
                           publish_timeout_s=self._amqp.publish_timeout_s)
        self._servers.append(server)
        if shared_channel:
            self._sharing.append(server)

    async def _start_servers(self) -> None:
        """Start every server at once: declares and consumes on different channels
        run concurrently, those sharing a channel one after the other."""
        sharing = {id(s) for s in self._sharing}
        starts = [s.start() for s in self._servers if id(s) not in sharing]
        by_prefetch: dict[int, list[RpcServer]] = {}
        for server in self._sharing:
            by_prefetch.setdefault(server.prefetch, []).append(server)
        for prefetch, servers in by_prefetch.items():
            for i in range(0, len(servers), CONSUMERS_PER_CHANNEL):
                channel = await self.connection.channel()
                await channel.set_qos(prefetch_count=prefetch)  # per consumer
                self._channels.append(channel)
                starts += [s.start(channel) for s in servers[i:i + CONSUMERS_PER_CHANNEL]]
        await asyncio.gather(*starts)

    def with_outbox(self, *, lease_s: float = 15.0) -> Relay:
        """Run an outbox relay in this worker (for a service that writes outbox rows)."""
        if self.relay is None:
            self.relay = Relay(self.pool, self.rpc, lease_s=lease_s)
        return self.relay

    def every(self, interval_s: float, fn: Callable[[], Awaitable[None]], name: str, *,
              once: bool = False) -> None:
        """Run ``fn`` every ``interval_s`` seconds; a failure is logged and retried next time.

        ``once``: a cluster-wide task, run in each round by one replica of the
        service only, the leader of ``name`` (``shared.leader``)."""
        if once:
            leader = Leadership(self.pool, name)
            self.leaders.append(leader)
            fn = leader.guard(fn)
        self._periodic.append((interval_s, fn, name))

    async def _probe_database(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(fn)

    def health_info(self, **extra: object) -> None:
        self._health_extra.update(extra)

    async def _loop(self, interval_s: float, fn: Callable[[], Awaitable[None]], name: str) -> None:
        while not self._stopping.is_set():
            try:
                await fn()
            except Exception as exc:
                if is_outage(exc):
                    self.outages.note()
                if is_transient(exc):
                    log.warning("worker.periodic_failed", task=name, error=describe(exc))
                else:
                    log.exception("worker.periodic_failed", task=name)
            try:
                await asyncio.wait_for(self._stopping.wait(), interval_s)
            except asyncio.TimeoutError:
                pass

    async def run(self) -> None:
        """Start everything registered and block until a stop signal."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self._start_servers()
        if self.relay is not None:
            self.relay.start()
        for interval_s, fn, name in self._periodic:
            self._tasks.append(asyncio.create_task(self._loop(interval_s, fn, name)))
        extra = dict(self._health_extra)
        extra["retrying"] = lambda: sum(s.retrying for s in self._servers)
        if self.leaders:
            extra["leading"] = lambda: [lead.job for lead in self.leaders if lead.leading]
        if self.relay is not None:
            relay = self.relay
            extra["outbox"] = lambda: relay.backlog
        health = await start_health_server(
            self._health, {"database": database_check(self.pool),
                           "broker": broker_check(self.connection)},
            service=self.name, **extra)
        log.info("worker.started", worker=self.name)
        self.started.set()
        await self._stopping.wait()
        log.info("worker.stopping", worker=self.name)
        # Every queue stops taking messages at once; those in flight share one grace.
        await asyncio.gather(*(s.stop(self._shutdown.grace_s) for s in self._servers))
        for channel in self._channels:
            try:
                await channel.close()
            except Exception:  # closing a channel of a dead connection
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for leader in self.leaders:
            await leader.resign()
        for fn in self._on_stop:
            await fn()
        if self.relay is not None:
            await self.relay.stop()
        if health is not None:
            await health.cleanup()
        await self.rpc.close()
        await self.connection.close()
        await self.pool.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("worker.stopped", worker=self.name)

    def stop(self) -> None:
        self._stopping.set()
