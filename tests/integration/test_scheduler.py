"""The scheduler and the host-capacity data layer against real PostgreSQL and RabbitMQ.

``shared.db.hosts`` is exercised on the test's own database (claims raced from
separate connections); the scheduler's handler places servers, records faults
and casts builds onto a real vhost, where the test reads ``compute.<host>``
with aio-pika; the whole service also runs in-process behind its queue and as
``python -m services.scheduler``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from uuid import UUID

import aio_pika
import asyncpg
import msgspec
import pytest

from services.scheduler.app import create_worker
from services.scheduler.build import BuildScheduler
from services.scheduler.settings import SchedulerSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BuildServer, ComputeMessage
from shared.contracts.scheduler import QUEUE as SCHEDULER_QUEUE
from shared.errors import BrokerUnavailable
from shared.contracts.scheduler import ScheduleBuild
from shared.db import hosts
from shared.db.hosts import HostCapacity
from shared.db.pool import create_pool
from shared.rpc import RpcClient, connect

REPO = Path(__file__).resolve().parents[2]

SMALL = FlavorSpec(id="2", name="m1.small", ram_mb=2048, disk_gb=20, vcpus=1)
HUGE = FlavorSpec(id="9", name="m1.huge", ram_mb=122880, disk_gb=20, vcpus=1)
IMAGE = ImageSpec(id=uuid.UUID("70a599e0-31e7-49b7-b260-868f441e862b"), name="cirros")


def capacity(host: str, *, zone: str = "nova", ram_mb: int = 65536, disk_gb: int = 1000,
             vcpus: int = 32, **ratios: float) -> HostCapacity:
    return HostCapacity(host=host, availability_zone=zone, total_ram_mb=ram_mb,
                        total_disk_gb=disk_gb, total_vcpus=vcpus, **ratios)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=10))
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        yield conn


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await connect(amqp_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def rpc(broker: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[RpcClient]:
    client = RpcClient(broker, timeout=10)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def scheduler(pool: asyncpg.Pool, rpc: RpcClient) -> BuildScheduler:
    return BuildScheduler(pool, rpc, SchedulerSettings())


async def add_server(conn: asyncpg.Connection, flavor: FlavorSpec = SMALL, *,
                     vm_state: str = "building", task_state: str | None = "scheduling",
                     zone: str | None = None) -> BuildServer:
    sid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,
                                vm_state, task_state, availability_zone, reservation_id)
           VALUES ($1, 'demo', 'u-demo', $2, $3, $4, $5, $6, $7, $8, $9)""",
        sid, f"vm-{sid.hex[:6]}", IMAGE.id, flavor.id, msgspec.to_builtins(flavor),
        vm_state, task_state, zone, f"r-{sid.hex[:8]}")
    return BuildServer(server_id=sid, project_id="demo", user_id="u-demo",
                       name=f"vm-{sid.hex[:6]}", flavor=flavor, image=IMAGE)


async def server_row(conn: asyncpg.Connection, sid: UUID) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM servers WHERE id = $1", sid)


async def faults(conn: asyncpg.Connection, sid: UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM server_faults WHERE server_id = $1 ORDER BY id", sid)


async def host_row(conn: asyncpg.Connection, host: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM compute_hosts WHERE host = $1", host)


async def age_heartbeat(conn: asyncpg.Connection, host: str, seconds: int) -> None:
    await conn.execute("UPDATE compute_hosts SET last_heartbeat = now() - make_interval(secs => $2) "
                       "WHERE host = $1", host, seconds)


async def drain(broker: aio_pika.abc.AbstractRobustConnection, host: str) -> list[ComputeMessage]:
    """Every message waiting on ``compute.<host>``, decoded as the agent would."""
    channel = await broker.channel()
    try:
        queue = await channel.declare_queue(f"compute.{host}", durable=True)
        out = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            out.append(msgspec.json.decode(message.body, type=ComputeMessage))
        return out
    finally:
        await channel.close()


# --------------------------------------------------------------------------- shared.db.hosts


async def test_report_creates_then_updates_without_touching_used(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1", ram_mb=4096), starting=True)
    first = await host_row(db, "cn1")
    assert first["total_ram_mb"] == 4096 and first["used_ram_mb"] == 0
    assert await hosts.claim(db, "cn1", uuid.uuid4(), 1024, 10, 1)

    await db.execute("UPDATE compute_hosts SET last_heartbeat = now() - interval '1 hour'")
    await hosts.report(db, capacity("cn1", zone="az2", ram_mb=8192, ram_ratio=1.5))
    row = await host_row(db, "cn1")
    assert (row["availability_zone"], row["total_ram_mb"], row["ram_ratio"]) == ("az2", 8192, 1.5)
    assert (row["used_ram_mb"], row["used_disk_gb"], row["used_vcpus"]) == (1024, 10, 1)
    assert row["last_heartbeat"] > first["last_heartbeat"]
    assert row["started_at"] == first["started_at"]  # a heartbeat is not a restart

    await hosts.report(db, capacity("cn1", ram_mb=8192), starting=True)
    assert (await host_row(db, "cn1"))["started_at"] > first["started_at"]


async def test_concurrent_claims_never_overcommit(pool: asyncpg.Pool, db_url: str) -> None:
    # Room for exactly five m1.small by RAM (disk and VCPUs are plentiful).
    async with pool.acquire() as conn:
        await hosts.report(conn, capacity("cn1", ram_mb=5 * SMALL.ram_mb + SMALL.ram_mb - 1))
    conns = [await asyncpg.connect(db_url) for _ in range(20)]
    try:
        start = asyncio.Event()

        async def one(conn: asyncpg.Connection) -> bool:
            await start.wait()
            return await hosts.claim(conn, "cn1", uuid.uuid4(), SMALL.ram_mb, SMALL.disk_gb,
                                     SMALL.vcpus)

        tasks = [asyncio.create_task(one(c)) for c in conns]
        await asyncio.sleep(0.05)
        start.set()
        results = await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    assert results.count(True) == 5
    async with pool.acquire() as conn:
        row = await host_row(conn, "cn1")
        assert row["used_ram_mb"] == 5 * SMALL.ram_mb
        assert row["used_disk_gb"] == 5 * SMALL.disk_gb
        assert row["used_vcpus"] == 5 * SMALL.vcpus
        assert await conn.fetchval("SELECT count(*) FROM host_claims WHERE host = 'cn1'") == 5


async def test_claim_is_idempotent_and_one_host_per_server(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1", ram_mb=4096))
    await hosts.report(db, capacity("cn2", ram_mb=4096))
    sid = uuid.uuid4()
    assert await hosts.claim(db, "cn1", sid, 4096, 10, 2)
    # Again, even though the host is now full: the server already holds it.
    assert await hosts.claim(db, "cn1", sid, 4096, 10, 2)
    assert (await host_row(db, "cn1"))["used_ram_mb"] == 4096
    assert not await hosts.claim(db, "cn2", sid, 1024, 10, 2)
    assert (await host_row(db, "cn2"))["used_ram_mb"] == 0
    claim = await hosts.claim_of(db, sid)
    assert claim is not None and (claim.host, claim.ram_mb, claim.disk_gb, claim.vcpus) == ("cn1", 4096, 10, 2)


async def test_claim_that_does_not_fit_changes_nothing(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1", vcpus=4, cpu_ratio=2.0))  # 8 VCPUs usable
    assert await hosts.claim(db, "cn1", uuid.uuid4(), 1024, 10, 6)
    sid = uuid.uuid4()
    assert not await hosts.claim(db, "cn1", sid, 1024, 10, 3)  # RAM and disk fit, VCPUs do not
    row = await host_row(db, "cn1")
    assert (row["used_ram_mb"], row["used_disk_gb"], row["used_vcpus"]) == (1024, 10, 6)
    assert await hosts.claim_of(db, sid) is None
    assert await hosts.claim(db, "cn1", sid, 1024, 10, 2)  # exactly the last two
    assert not await hosts.claim(db, "no-such-host", uuid.uuid4(), 1, 1, 1)


async def test_claim_inside_a_callers_transaction_rolls_back_with_it(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1", ram_mb=4096))
    sid = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.transaction():
            assert await hosts.claim(db, "cn1", sid, 4096, 10, 1)
            raise RuntimeError("caller gives up")
    assert (await host_row(db, "cn1"))["used_ram_mb"] == 0
    assert await hosts.claim_of(db, sid) is None


async def test_release_restores_and_is_idempotent(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1", ram_mb=4096))
    keep, drop = uuid.uuid4(), uuid.uuid4()
    assert await hosts.claim(db, "cn1", keep, 1024, 10, 1)
    assert await hosts.claim(db, "cn1", drop, 3072, 30, 3)
    assert not await hosts.claim(db, "cn1", uuid.uuid4(), 1, 1, 1)  # full

    assert await hosts.release(db, drop)
    row = await host_row(db, "cn1")
    assert (row["used_ram_mb"], row["used_disk_gb"], row["used_vcpus"]) == (1024, 10, 1)
    assert not await hosts.release(db, drop)
    assert (await host_row(db, "cn1"))["used_ram_mb"] == 1024
    assert await hosts.claim(db, "cn1", uuid.uuid4(), 3072, 30, 3)  # the room is back


async def test_live_hosts_skips_dead_and_disabled(db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("alive", ram_mb=4096, ram_ratio=1.5))
    await hosts.report(db, capacity("dead"))
    await hosts.report(db, capacity("off"))
    await age_heartbeat(db, "dead", 31)
    assert await hosts.set_disabled(db, "off", True)
    assert await hosts.claim(db, "alive", uuid.uuid4(), 1000, 10, 1)

    live = await hosts.live_hosts(db, 30)
    assert [h.host for h in live] == ["alive"]
    assert (live[0].free_ram_mb, live[0].free_disk_gb, live[0].free_vcpus) == (6144 - 1000, 990, 31)
    assert live[0].alive

    assert {h.host for h in await hosts.live_hosts(db, 60)} == {"alive", "dead"}
    every = {h.host: h for h in await hosts.all_hosts(db, 30)}
    assert (every["dead"].alive, every["off"].alive, every["off"].disabled) == (False, True, True)

    # A heartbeat brings the dead host back.
    await hosts.report(db, capacity("dead"))
    assert {h.host for h in await hosts.live_hosts(db, 30)} == {"alive", "dead"}


# --------------------------------------------------------------------------- the handler


async def test_build_is_placed_claimed_and_sent(db: asyncpg.Connection, scheduler: BuildScheduler,
                                                broker) -> None:
    await hosts.report(db, capacity("cn1", zone="az1", ram_mb=16384))
    await hosts.report(db, capacity("cn2", zone="az1", ram_mb=32768))
    build = await add_server(db)

    assert await scheduler.schedule_build(ScheduleBuild(build=build)) == "cn2"  # most free RAM

    row = await server_row(db, build.server_id)
    assert (row["host"], row["availability_zone"]) == ("cn2", "az1")
    assert (row["vm_state"], row["task_state"]) == ("building", "scheduling")  # the agent moves it on
    claim = await hosts.claim_of(db, build.server_id)
    assert claim is not None and (claim.host, claim.ram_mb) == ("cn2", SMALL.ram_mb)
    assert (await host_row(db, "cn2"))["used_ram_mb"] == SMALL.ram_mb
    assert await drain(broker, "cn2") == [build]
    assert await drain(broker, "cn1") == []
    assert await faults(db, build.server_id) == []


async def test_no_host_fits_puts_server_in_error_with_the_reason(
        db: asyncpg.Connection, scheduler: BuildScheduler, broker) -> None:
    await hosts.report(db, capacity("cn1", ram_mb=65536))
    await hosts.report(db, capacity("cn2", ram_mb=32768))
    build = await add_server(db, HUGE)

    assert await scheduler.schedule_build(ScheduleBuild(build=build)) is None

    row = await server_row(db, build.server_id)
    assert (row["vm_state"], row["task_state"], row["host"]) == ("error", None, None)
    [fault] = await faults(db, build.server_id)
    assert fault["code"] == 500
    assert fault["message"] == ("No valid host was found. Filter RamFilter returned 0 hosts "
                                "(needs 122880 MB RAM; largest free 65536 MB).")
    assert "RamFilter 2->0" in fault["details"]
    assert await hosts.claim_of(db, build.server_id) is None
    assert await db.fetchval("SELECT sum(used_ram_mb) FROM compute_hosts") == 0
    assert await drain(broker, "cn1") == [] and await drain(broker, "cn2") == []


async def test_dead_host_is_not_chosen(db: asyncpg.Connection, scheduler: BuildScheduler,
                                       broker) -> None:
    await hosts.report(db, capacity("big-but-dead", ram_mb=262144))
    await hosts.report(db, capacity("small", ram_mb=8192))
    await age_heartbeat(db, "big-but-dead", 120)
    build = await add_server(db)

    assert await scheduler.schedule_build(ScheduleBuild(build=build)) == "small"
    assert (await server_row(db, build.server_id))["host"] == "small"
    assert await drain(broker, "big-but-dead") == []
    assert await drain(broker, "small") == [build]


async def test_no_host_up(db: asyncpg.Connection, pool: asyncpg.Pool, rpc: RpcClient) -> None:
    # A down time of 2 s: with the default 30, a PostgreSQL started less than 30 s
    # ago (this test run first) keeps the host in its grace, not down.
    scheduler = BuildScheduler(pool, rpc, SchedulerSettings(service_down_time_s=2))
    await hosts.report(db, capacity("cn1"))
    await age_heartbeat(db, "cn1", 120)
    await eventually(lambda: db.fetchval(
        "SELECT pg_postmaster_start_time() < now() - interval '2 seconds'"))
    build = await add_server(db)

    assert await scheduler.schedule_build(ScheduleBuild(build=build)) is None
    [fault] = await faults(db, build.server_id)
    assert fault["message"] == ("No valid host was found. No compute hosts are up "
                                "(1 with no heartbeat for 2 s).")


async def test_zone_with_no_host(db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await hosts.report(db, capacity("cn1", zone="az1"))
    build = await add_server(db, zone="az9")

    assert await scheduler.schedule_build(ScheduleBuild(build=build, availability_zone="az9")) is None
    assert (await server_row(db, build.server_id))["vm_state"] == "error"
    [fault] = await faults(db, build.server_id)
    assert "availability zone 'az9' has no host up" in fault["message"]


async def test_requested_zone_and_excluded_hosts_are_honoured(
        db: asyncpg.Connection, scheduler: BuildScheduler) -> None:
    await hosts.report(db, capacity("a1", zone="az1", ram_mb=65536))
    await hosts.report(db, capacity("a2", zone="az1", ram_mb=8192))
    await hosts.report(db, capacity("b1", zone="az2", ram_mb=131072))
    build = await add_server(db, zone="az1")
    msg = ScheduleBuild(build=build, availability_zone="az1", excluded_hosts=("a1",))
    assert await scheduler.schedule_build(msg) == "a2"


async def test_redelivery_does_not_claim_twice(db: asyncpg.Connection, scheduler: BuildScheduler,
                                               broker) -> None:
    await hosts.report(db, capacity("cn1"))
    await hosts.report(db, capacity("cn2"))
    build = await add_server(db)
    msg = ScheduleBuild(build=build)

    first = await scheduler.schedule_build(msg)
    # As if the scheduler died before acking: the same message again. The server
    # is placed but still in scheduling, so its build goes to the same host again.
    assert await scheduler.schedule_build(msg) == first
    assert await db.fetchval("SELECT count(*) FROM host_claims") == 1
    assert await db.fetchval("SELECT sum(used_ram_mb) FROM compute_hosts") == SMALL.ram_mb
    assert await drain(broker, first) == [build, build]

    # Once the agent has taken it up, a redelivery changes nothing and sends nothing.
    await db.execute("UPDATE servers SET task_state = 'networking' WHERE id = $1", build.server_id)
    assert await scheduler.schedule_build(msg) is None
    assert await drain(broker, first) == []
    assert await db.fetchval("SELECT sum(used_ram_mb) FROM compute_hosts") == SMALL.ram_mb


@pytest.mark.parametrize(("vm_state", "task_state"), [("deleted", None), ("error", None),
                                                      ("building", "deleting")])
async def test_server_not_in_scheduling_is_ignored(db: asyncpg.Connection, scheduler: BuildScheduler,
                                                   broker, vm_state: str, task_state: str | None) -> None:
    await hosts.report(db, capacity("cn1"))
    build = await add_server(db, vm_state=vm_state, task_state=task_state)
    assert await scheduler.schedule_build(ScheduleBuild(build=build)) is None
    assert await hosts.claim_of(db, build.server_id) is None
    assert await faults(db, build.server_id) == []
    assert (await server_row(db, build.server_id))["vm_state"] == vm_state
    assert await drain(broker, "cn1") == []


async def test_unknown_server_is_ignored(scheduler: BuildScheduler, db: asyncpg.Connection) -> None:
    await hosts.report(db, capacity("cn1"))
    build = BuildServer(server_id=uuid.uuid4(), project_id="demo", user_id="u", name="ghost",
                        flavor=SMALL, image=IMAGE)
    assert await scheduler.schedule_build(ScheduleBuild(build=build)) is None
    assert await db.fetchval("SELECT count(*) FROM host_claims") == 0


async def test_a_failed_cast_is_retried_never_an_error(
        db: asyncpg.Connection, scheduler: BuildScheduler, broker) -> None:
    await hosts.report(db, capacity("cn1"))
    # A queue of that name that is not durable: the scheduler's durable declare
    # of compute.cn1 is refused by the broker, so the cast fails for real.
    channel = await broker.channel()
    await channel.declare_queue("compute.cn1", durable=False)
    build = await add_server(db)
    try:
        with pytest.raises(BrokerUnavailable):
            await scheduler.schedule_build(ScheduleBuild(build=build))
    finally:
        await channel.close()

    # Transient: the server stays placed, in BUILD(scheduling), holding its claim,
    # for the message to come again (shared.rpc.server retries it).
    row = await server_row(db, build.server_id)
    assert (row["vm_state"], row["task_state"], row["host"]) == ("building", "scheduling", "cn1")
    assert await faults(db, build.server_id) == []
    assert await hosts.claim_of(db, build.server_id) is not None

    channel = await broker.channel()
    await channel.queue_delete("compute.cn1")
    await channel.close()
    assert await scheduler.schedule_build(ScheduleBuild(build=build)) == "cn1"
    assert await drain(broker, "cn1") == [build]
    assert (await host_row(db, "cn1"))["used_ram_mb"] == SMALL.ram_mb  # claimed once


async def test_server_deleted_while_scheduling_keeps_no_claim(
        db: asyncpg.Connection, scheduler: BuildScheduler, broker,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await hosts.report(db, capacity("cn1"))
    build = await add_server(db)
    real_claim = hosts.claim

    async def claim_racing_a_delete(*args, **kw) -> bool:
        # The API deletes the server after the scheduler read it, before it is placed.
        await db.execute("UPDATE servers SET vm_state = 'deleted', task_state = NULL WHERE id = $1",
                         build.server_id)
        return await real_claim(*args, **kw)

    monkeypatch.setattr(hosts, "claim", claim_racing_a_delete)
    assert await scheduler.schedule_build(ScheduleBuild(build=build)) is None

    assert await hosts.claim_of(db, build.server_id) is None
    assert (await host_row(db, "cn1"))["used_ram_mb"] == 0
    assert (await server_row(db, build.server_id))["host"] is None
    assert await faults(db, build.server_id) == []
    assert await drain(broker, "cn1") == []


async def test_two_schedulers_racing_for_the_last_slots(pool: asyncpg.Pool, db_url: str,
                                                        rpc: RpcClient, broker) -> None:
    # Six m1.small fit over the two hosts; twelve builds race through two
    # scheduler instances with pools of their own, as two processes would.
    async with pool.acquire() as conn:
        await hosts.report(conn, capacity("cn1", ram_mb=3 * SMALL.ram_mb))
        await hosts.report(conn, capacity("cn2", ram_mb=3 * SMALL.ram_mb))
        builds = [await add_server(conn) for _ in range(12)]
    pools = [await create_pool(DatabaseSettings(url=db_url, pool_min=1, pool_max=6)) for _ in range(2)]
    try:
        scheds = [BuildScheduler(p, rpc, SchedulerSettings(host_subset_size=2))
                  for p in pools]
        results = await asyncio.gather(*(scheds[i % 2].schedule_build(ScheduleBuild(build=b))
                                         for i, b in enumerate(builds)))
    finally:
        await asyncio.gather(*(p.close() for p in pools))

    assert sorted(r for r in results if r) == ["cn1"] * 3 + ["cn2"] * 3
    async with pool.acquire() as conn:
        used = {r["host"]: r["used_ram_mb"] for r in await conn.fetch("SELECT * FROM compute_hosts")}
        assert used == {"cn1": 3 * SMALL.ram_mb, "cn2": 3 * SMALL.ram_mb}
        assert await conn.fetchval("SELECT count(*) FROM host_claims") == 6
        states = [r["vm_state"] for r in await conn.fetch("SELECT vm_state FROM servers")]
        assert sorted(states) == ["building"] * 6 + ["error"] * 6
        for fault in await conn.fetch("SELECT message FROM server_faults"):
            assert fault["message"].startswith("No valid host was found. ")
    sent = await drain(broker, "cn1") + await drain(broker, "cn2")
    assert len(sent) == 6


# --------------------------------------------------------------------------- the service


@pytest.fixture
def settings(db_url: str, amqp_url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url, pool_min=1, pool_max=5),
                    amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=10), log=LogSettings(),
                    health=HealthSettings(port=0), scheduler=SchedulerSettings())


async def test_service_places_a_build_sent_to_its_queue(settings: Settings, db: asyncpg.Connection,
                                                         rpc: RpcClient, broker) -> None:
    worker = await create_worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        await hosts.report(db, capacity("cn1"))
        build = await add_server(db)
        await rpc.cast(SCHEDULER_QUEUE, ScheduleBuild(build=build), request_id=None)

        async def placed() -> bool:
            return await db.fetchval("SELECT host FROM servers WHERE id = $1", build.server_id) == "cn1"

        await eventually(placed)
        await eventually(lambda: _has_messages(broker, "compute.cn1"))
        assert await drain(broker, "cn1") == [build]
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _has_messages(broker, queue: str) -> bool:
    channel = await broker.channel()
    try:
        q = await channel.declare_queue(queue, durable=True)
        return q.declaration_result.message_count > 0
    finally:
        await channel.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_python_m_services_scheduler_serves_health_and_stops_on_sigterm(
        db_url: str, amqp_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "NIMBUS_DATABASE_URL": db_url, "NIMBUS_AMQP_URL": amqp_url,
           "NIMBUS_HEALTH_PORT": str(port), "NIMBUS_CONFIG": ""}
    proc = subprocess.Popen([sys.executable, "-m", "services.scheduler"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def healthz() -> tuple[int, bytes]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                return resp.status, resp.read()

        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = await asyncio.to_thread(healthz)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "no /healthz within 30 s"
                await asyncio.sleep(0.2)
        assert status == 200
        report = msgspec.json.decode(body)
        assert report["status"] == "ok" and report["database"] == "ok" and report["broker"] == "ok"
        assert report["service"] == "scheduler"

        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 30)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert rc == 0, output
        assert '"worker.stopped"' in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- the cached view


async def test_a_cached_view_never_places_on_a_host_disabled_or_full_since(
        db: asyncpg.Connection, pool: asyncpg.Pool, rpc: RpcClient) -> None:
    """The view of the hosts is kept for host_refresh_s (an hour here): what changed
    since it was read is caught by the claim, and the build lands on a host that
    can take it, read afresh."""
    scheduler = BuildScheduler(pool, rpc, SchedulerSettings(host_refresh_s=3600))
    await hosts.report(db, capacity("big", ram_mb=65536))
    await hosts.report(db, capacity("small", ram_mb=8192))
    first = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=first)) == "big"  # view read

    await hosts.set_disabled(db, "big", True, "maintenance")
    second = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=second)) == "small"
    await hosts.set_disabled(db, "big", False)

    # Another scheduler process fills "big" behind this one's back.
    await db.execute("UPDATE compute_hosts SET used_ram_mb = total_ram_mb WHERE host = 'big'")
    third = await add_server(db)
    assert await scheduler.schedule_build(ScheduleBuild(build=third)) == "small"
    used = {r["host"]: r["used_ram_mb"] for r in await db.fetch(
        "SELECT host, used_ram_mb FROM compute_hosts")}
    assert used == {"big": 65536, "small": 2 * SMALL.ram_mb}


async def test_a_cached_view_counts_its_own_claims(db: asyncpg.Connection, pool: asyncpg.Pool,
                                                   rpc: RpcClient) -> None:
    """Builds on one view spread as they would on fresh reads: each claim is
    counted into the view, so the most-free-RAM weigher sees it."""
    scheduler = BuildScheduler(pool, rpc, SchedulerSettings(host_refresh_s=3600))
    await hosts.report(db, capacity("a", ram_mb=16384))
    await hosts.report(db, capacity("b", ram_mb=16384))
    placed = [await scheduler.schedule_build(ScheduleBuild(build=await add_server(db)))
              for _ in range(6)]
    assert sorted(placed) == ["a", "a", "a", "b", "b", "b"]


async def test_builds_chosen_at_once_on_one_view_go_to_different_hosts(
        db: asyncpg.Connection, pool: asyncpg.Pool, rpc: RpcClient) -> None:
    """A build is counted into the view when its host is chosen, before its claim's
    round trip: builds handled at the same moment do not all pick the same best host."""
    scheduler = BuildScheduler(pool, rpc, SchedulerSettings(host_refresh_s=3600))
    for name in ("a", "b", "c", "d"):
        await hosts.report(db, capacity(name, ram_mb=16384))
    builds = [await add_server(db) for _ in range(4)]
    placed = await asyncio.gather(*(scheduler.schedule_build(ScheduleBuild(build=b))
                                    for b in builds))
    assert sorted(placed) == ["a", "b", "c", "d"]
