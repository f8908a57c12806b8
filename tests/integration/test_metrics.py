"""The metrics fed by real PostgreSQL and RabbitMQ: the RPC layer's counters, the
pool's gauges, and the scrape-time reads of servers, hosts and queue depths.

The registry is the process's one, shared with other tests: counters are read
before and after; the scrape-time gauges are replaced whole by each refresh.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import asyncpg
import msgspec
from prometheus_client import REGISTRY

from shared.config import DatabaseSettings
from shared.contracts.common import FlavorSpec
from shared.db import hosts
from shared.db.pool import connect, create_pool
from shared.errors import ServerNotFound
from shared.metrics_sources import database_refresher, queue_refresher
from shared.retry import RetryPolicy
from shared.rpc import RpcClient, RpcServer
from shared.rpc import connect as rpc_connect
from shared.rpc.server import CallContext, dead_letter_queue

FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)


class Ping(msgspec.Struct, tag="metrics_ping", frozen=True):
    fail: str = ""


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rpc_calls_casts_retries_and_dead_letters_are_counted(amqp_url):
    connection = await rpc_connect(amqp_url)
    client = RpcClient(connection, timeout=5)
    await client.start()
    queue = f"test.{uuid.uuid4().hex[:8]}"
    handled: asyncio.Queue[str] = asyncio.Queue()
    tries: list[str] = []

    async def handler(msg: Ping, ctx: CallContext) -> str:
        tries.append(msg.fail)
        if msg.fail == "not-found":
            raise ServerNotFound("x")
        if msg.fail == "flaky" and tries.count("flaky") < 3:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        if msg.fail == "bug":
            raise ZeroDivisionError
        await handled.put(msg.fail)
        return "pong"

    def counts() -> list[float]:
        return [_value("nimbus_rpc_sent_total", kind="call", message="metrics_ping", outcome="ok"),
                _value("nimbus_rpc_sent_total", kind="call", message="metrics_ping",
                       outcome="error"),
                _value("nimbus_rpc_sent_total", kind="cast", message="metrics_ping", outcome="ok"),
                _value("nimbus_rpc_retries_total", message="metrics_ping"),
                _value("nimbus_rpc_dead_lettered_total", queue=queue, reason="permanent"),
                _value("nimbus_rpc_handled_total", kind="cast", message="metrics_ping",
                       outcome="ok")]

    server = RpcServer(connection, queue, Ping, handler,
                       policy=RetryPolicy(first_delay_s=0.01, max_delay_s=0.05, deadline_s=30))
    await server.start()
    before = counts()
    try:
        assert await client.call(queue, Ping(), str, request_id=None) == "pong"
        try:
            await client.call(queue, Ping("not-found"), str, request_id=None)
        except ServerNotFound:
            pass
        await client.cast(queue, Ping("flaky"), request_id=None)
        assert await asyncio.wait_for(handled.get(), 10) == ""  # the call's
        assert await asyncio.wait_for(handled.get(), 10) == "flaky"
        # The letter, consumed as it comes; stopping the server then waits for the
        # task that published it, which counts it.
        letters: asyncio.Queue[bytes] = asyncio.Queue()
        channel = await connection.channel()
        dead = await channel.declare_queue(dead_letter_queue(queue), durable=True)

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await letters.put(message.body)

        await dead.consume(take, no_ack=True)
        await client.cast(queue, Ping("bug"), request_id=None)
        assert msgspec.json.decode(await asyncio.wait_for(letters.get(), 10), type=Ping) == \
            Ping("bug")
        await channel.close()
    finally:
        await server.stop()
        await client.close()
        await connection.close()
    assert [a - b for a, b in zip(counts(), before)] == [1, 1, 2, 2, 1, 1]


async def test_the_pool_reports_its_connections_in_use_and_idle(db_url):
    pool = await create_pool(DatabaseSettings(url=db_url, pool_min=2, pool_max=3))
    # Other tests' pools may be open too: the gauges sum every live pool.
    base_in_use = _value("nimbus_db_pool_connections", state="in_use")
    base_max = _value("nimbus_db_pool_max_connections")
    waits = _value("nimbus_db_pool_acquire_seconds_count")
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            assert _value("nimbus_db_pool_connections", state="in_use") == base_in_use + 1
        assert _value("nimbus_db_pool_connections", state="in_use") == base_in_use
        assert _value("nimbus_db_pool_connections", state="idle") >= 2
        assert _value("nimbus_db_pool_acquire_seconds_count") == waits + 1
    finally:
        await pool.close()
    assert _value("nimbus_db_pool_max_connections") == base_max - 3


async def _server(conn: asyncpg.Connection, vm_state: str, task: str | None) -> None:
    await conn.execute(
        """INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,
                                task_state, host, reservation_id)
           VALUES ($1, 'p', 'u', 'vm', '100', $2, $3, $4, 'h1', 'r-1')""",
        uuid.uuid4(), msgspec.to_builtins(FLAVOR), vm_state, task)


async def test_servers_by_status_and_host_heartbeats_are_read_at_scrape_time(db_url):
    conn = await connect(db_url)
    pool = await create_pool(DatabaseSettings(url=db_url))
    try:
        for vm_state, task in (("active", None), ("active", None), ("active", "rebooting"),
                               ("building", "spawning"), ("error", None)):
            await _server(conn, vm_state, task)
        await hosts.report(conn, hosts.HostCapacity(host="h1", availability_zone="az1",
                                                    total_ram_mb=1, total_disk_gb=1,
                                                    total_vcpus=1))
        await database_refresher(pool)()
        by_status = {status: _value("nimbus_servers", status=status)
                     for status in ("ACTIVE", "REBOOT", "BUILD(spawning)", "ERROR", "SHUTOFF")}
        assert by_status == {"ACTIVE": 2, "REBOOT": 1, "BUILD(spawning)": 1, "ERROR": 1,
                             "SHUTOFF": 0}
        assert _value("nimbus_servers_oldest_seconds", status="ACTIVE") >= 0
        age = REGISTRY.get_sample_value("nimbus_compute_host_heartbeat_age_seconds",
                                        {"host": "h1", "disabled": "false"})
        assert age is not None and 0 <= age < 60
        # A status no server has any more drops out at the next scrape.
        await conn.execute("UPDATE servers SET deleted_at = now() WHERE vm_state = 'error'")
        await database_refresher(pool)()
        assert REGISTRY.get_sample_value("nimbus_servers", {"status": "ERROR"}) is None
    finally:
        await pool.close()
        await conn.close()


async def test_queue_depths_are_read_with_passive_declares(db_url, amqp_url):
    connection = await rpc_connect(amqp_url)
    pool = await create_pool(DatabaseSettings(url=db_url))
    try:
        async with pool.acquire() as conn:
            await hosts.report(conn, hosts.HostCapacity(host="q1", availability_zone="az1",
                                                        total_ram_mb=1, total_disk_gb=1,
                                                        total_vcpus=1))
        channel = await connection.channel()
        # Two waiting for the scheduler, one dead letter of the host's queue; the
        # other dead-letter queues do not exist (each missing one closes a channel).
        for name, n in (("scheduler", 2), ("compute.q1.dead-letter", 1)):
            await channel.declare_queue(name, durable=True)
            for _ in range(n):
                await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=name)
        await channel.close()
        await queue_refresher(connection, pool)()
        assert _value("nimbus_queue_messages", queue="scheduler") == 2
        assert _value("nimbus_queue_messages", queue="compute.q1.dead-letter") == 1
        assert REGISTRY.get_sample_value("nimbus_queue_messages",
                                         {"queue": "scheduler.dead-letter"}) is None
    finally:
        await pool.close()
        await connection.close()


async def _hosts_with_queues(pool, connection, prefix: str, n: int = 3):
    """``n`` host rows (``<prefix>0``...) and their compute queues; the channel made."""
    async with pool.acquire() as conn:
        await hosts.report_many(conn, [hosts.HostCapacity(
            host=f"{prefix}{i}", availability_zone="az1", total_ram_mb=1, total_disk_gb=1,
            total_vcpus=1) for i in range(n)])
    channel = await connection.channel()
    for i in range(n):
        await channel.declare_queue(f"compute.{prefix}{i}", durable=True)
    return channel


async def test_a_dead_letter_queue_not_known_to_exist_is_asked_about_in_turn_then_always(
        db_url, amqp_url, monkeypatch):
    import shared.metrics_sources as sources
    monkeypatch.setattr(sources, "MISSING_IN_TURN", 2)
    connection = await rpc_connect(amqp_url)
    pool = await create_pool(DatabaseSettings(url=db_url))
    try:
        channel = await _hosts_with_queues(pool, connection, "m")
        refresh = queue_refresher(connection, pool)
        await refresh()  # asks about two of the eight dead-letter queues, all missing
        assert _value("nimbus_queue_messages", queue="compute.m2") == 0
        assert REGISTRY.get_sample_value("nimbus_queue_messages",
                                         {"queue": "compute.m2.dead-letter"}) is None
        await channel.declare_queue("compute.m2.dead-letter", durable=True)
        await channel.default_exchange.publish(aio_pika.Message(b"{}"),
                                               routing_key="compute.m2.dead-letter")
        # Two of the eight not known to exist are asked about a scrape: its turn
        # comes within four, and the host queues are read at every one.
        for scrape in range(1, 5):
            await refresh()
            assert _value("nimbus_queue_messages", queue="compute.m0") == 0
            if REGISTRY.get_sample_value("nimbus_queue_messages",
                                         {"queue": "compute.m2.dead-letter"}) == 1:
                break
        else:
            raise AssertionError("the new dead-letter queue never showed")
        # Found, it is asked about at every scrape from now on.
        await channel.default_exchange.publish(aio_pika.Message(b"{}"),
                                               routing_key="compute.m2.dead-letter")
        await refresh()
        assert _value("nimbus_queue_messages", queue="compute.m2.dead-letter") == 2
        await channel.close()
    finally:
        await pool.close()
        await connection.close()


async def test_hosts_queues_are_asked_about_in_turn_each_keeping_its_last_depth(
        db_url, amqp_url, monkeypatch):
    import shared.metrics_sources as sources
    monkeypatch.setattr(sources, "QUEUES_IN_TURN", 1)
    connection = await rpc_connect(amqp_url)
    pool = await create_pool(DatabaseSettings(url=db_url))
    try:
        channel = await _hosts_with_queues(pool, connection, "t")
        for i in range(3):
            for _ in range(i + 1):
                await channel.default_exchange.publish(aio_pika.Message(b"{}"),
                                                       routing_key=f"compute.t{i}")
        refresh = queue_refresher(connection, pool)
        shown = []
        for _ in range(3):  # one host queue a scrape, each in turn
            await refresh()
            shown.append({i for i in range(3) if REGISTRY.get_sample_value(
                "nimbus_queue_messages", {"queue": f"compute.t{i}"}) is not None})
        assert [len(s) for s in shown] == [1, 2, 3]  # the ones asked before keep showing
        assert [_value("nimbus_queue_messages", queue=f"compute.t{i}") for i in range(3)] \
            == [1, 2, 3]
        await channel.close()
    finally:
        await pool.close()
        await connection.close()
