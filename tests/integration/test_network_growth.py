"""A project's default network grows by a further subnet when full (issue 14, point 4),
against real PostgreSQL and RabbitMQ.

The subnets are /29s (5 server addresses each) so that growth happens after a few
allocations; the service runs in-process as one replica or two (two Workers on
the ``network`` queue, each with its own database pool, as two processes would).
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import Port
from shared.contracts.network import AllocatePorts, DeallocatePorts, NetworkClient
from shared.rpc import RpcClient, connect
from services.network.app import create_worker
from services.network.errors import NoMoreFixedIps
from services.network.settings import NetworkSettings, Settings

Start = Callable[..., Awaitable[NetworkClient]]


@pytest.fixture
async def start(db_url: str, amqp_url: str) -> AsyncIterator[Start]:
    """``await start(replicas=N, **network_settings)``: N network service replicas
    with those ``[network]`` settings, and a client of theirs."""
    workers, tasks, closers = [], [], []

    async def _start(replicas: int = 1, **network: object) -> NetworkClient:
        settings = Settings(database=DatabaseSettings(url=db_url, pool_min=1, pool_max=20),
                            amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=30),
                            log=LogSettings(), health=HealthSettings(port=0),
                            network=NetworkSettings(**network))
        for _ in range(replicas):
            worker = await create_worker(settings)
            workers.append(worker)
            tasks.append(asyncio.create_task(worker.run()))
            await asyncio.wait_for(worker.started.wait(), 30)
        connection = await connect(amqp_url)
        rpc = RpcClient(connection, timeout=30)
        await rpc.start()
        closers.extend([rpc.close, connection.close])
        return NetworkClient(rpc, request_id=None)

    try:
        yield _start
    finally:
        for close in closers:
            await close()
        for worker in workers:
            worker.stop()
        for task in tasks:
            await asyncio.wait_for(task, 30)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):   # Worker.run took them from pytest
            loop.remove_signal_handler(sig)


async def boot(network: NetworkClient, project: str) -> Port:
    [port] = await network.allocate_ports(AllocatePorts(
        server_id=uuid.uuid4(), project_id=project, host="host-1"))
    return port


async def subnets(db: asyncpg.Connection, network_id: uuid.UUID) -> list[tuple[int, str]]:
    return [(r["ordinal"], str(r["cidr"])) for r in await db.fetch(
        "SELECT ordinal, cidr FROM subnets WHERE network_id = $1 ORDER BY ordinal", network_id)]


def project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def test_a_full_default_network_grows_by_a_subnet_and_allocation_goes_on(
        start: Start, db: asyncpg.Connection) -> None:
    network = await start(default_prefixlen=29)
    p = project()
    got = [await boot(network, p) for _ in range(12)]

    # One network, same id and name, three /29s carved in order from the supernet.
    assert {(port.network_id, port.network_name) for port in got} == {(got[0].network_id,
                                                                       "private")}
    assert await db.fetchval("SELECT count(*) FROM networks WHERE project_id = $1", p) == 1
    assert await subnets(db, got[0].network_id) == [
        (0, "10.0.0.0/29"), (1, "10.0.0.8/29"), (2, "10.0.0.16/29")]
    # Addresses in order, each port with its own subnet's cidr and gateway.
    assert [(port.address, port.cidr, port.gateway) for port in got] == (
        [(f"10.0.0.{i}", "10.0.0.0/29", "10.0.0.1") for i in range(2, 7)]
        + [(f"10.0.0.{i}", "10.0.0.8/29", "10.0.0.9") for i in range(10, 15)]
        + [(f"10.0.0.{i}", "10.0.0.16/29", "10.0.0.17") for i in (18, 19)])
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE network_id = $1",
                             got[0].network_id) == 15
    # The network keeps its first subnet as its cidr (what os-networks shows).
    assert await db.fetchval("SELECT cidr::text FROM networks WHERE id = $1",
                             got[0].network_id) == "10.0.0.0/29"

    # Addresses are handed out next-fit: the ones after the last, then a freed
    # one in the first subnet, and only then does the network grow again.
    second = (await db.fetchval("SELECT server_id FROM fixed_ips WHERE address = '10.0.0.3'"))
    assert await network.deallocate_ports(DeallocatePorts(server_id=second)) == 1
    more = [await boot(network, p) for _ in range(5)]
    assert [port.address for port in more] == ["10.0.0.20", "10.0.0.21", "10.0.0.22",
                                                "10.0.0.3", "10.0.0.26"]
    assert [cidr for _, cidr in await subnets(db, got[0].network_id)] == [
        "10.0.0.0/29", "10.0.0.8/29", "10.0.0.16/29", "10.0.0.24/29"]


async def test_concurrent_allocations_on_two_replicas_add_each_subnet_once(
        start: Start, db: asyncpg.Connection) -> None:
    network = await start(replicas=2, default_prefixlen=29)
    p = project()
    first = await boot(network, p)
    # 39 more at once: 40 addresses need exactly 8 /29s, whichever replica
    # finds the network full and however many find it at once.
    rest = await asyncio.gather(*(boot(network, p) for _ in range(39)))
    ports = [first, *rest]
    assert len({port.address for port in ports}) == 40
    cidrs = [cidr for _, cidr in await subnets(db, first.network_id)]
    assert cidrs == [f"10.0.0.{8 * i}/29" for i in range(8)]
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE network_id = $1 "
                             "AND server_id IS NULL", first.network_id) == 0
    for port in ports:
        assert ipaddress.IPv4Address(port.address) in ipaddress.IPv4Network(port.cidr)
    # The sequence was not burnt by losers of the race: the next project's
    # network is the next block.
    assert (await boot(network, project())).cidr == "10.0.0.64/29"


async def test_an_exhausted_supernet_is_a_clear_fault_and_takes_nothing(
        start: Start, db: asyncpg.Connection) -> None:
    network = await start(default_prefixlen=29, project_supernet="10.9.0.0/28")
    p = project()
    got = [await boot(network, p) for _ in range(10)]   # two /29s: all of the supernet
    assert {port.cidr for port in got} == {"10.9.0.0/29", "10.9.0.8/29"}
    server = uuid.uuid4()
    with pytest.raises(NoMoreFixedIps, match=(
            r"^No fixed IP addresses available for network private \(10\.9\.0\.0/29 and 1 more "
            r"subnet\): the project supernet 10\.9\.0\.0/28 has no /29 left for another "
            r"subnet\.$")):
        await network.allocate_ports(AllocatePorts(server_id=server, project_id=p,
                                                   host="host-1"))
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 0
    assert await db.fetchval("SELECT count(*) FROM subnets") == 2
    # A freed address is handed out again.
    assert await network.deallocate_ports(DeallocatePorts(
        server_id=await db.fetchval("SELECT server_id FROM fixed_ips "
                                    "WHERE address = '10.9.0.12'"))) == 1
    assert (await boot(network, p)).address == "10.9.0.12"


async def test_a_network_stops_growing_at_its_subnet_limit(start: Start,
                                                           db: asyncpg.Connection) -> None:
    network = await start(default_prefixlen=30, max_subnets_per_network=3)
    p = project()
    got = [await boot(network, p) for _ in range(3)]    # one address per /30
    assert [port.cidr for port in got] == ["10.0.0.0/30", "10.0.0.4/30", "10.0.0.8/30"]
    with pytest.raises(NoMoreFixedIps, match=(
            r"^No fixed IP addresses available for network private \(10\.0\.0\.0/30 and 2 more "
            r"subnets\): it has 3 subnets, the most a network may have \(3\)\.$")):
        await boot(network, p)
    assert await db.fetchval("SELECT count(*) FROM subnets") == 3


async def test_existing_networks_keep_their_size_and_grow_by_the_configured_one(
        start: Start, db: asyncpg.Connection) -> None:
    # A /24 default network made before the prefix was configurable (as the
    # migration leaves one: networks row, subnet 0, its fixed_ips).
    p, nid = project(), uuid.uuid4()
    await db.execute("SELECT setval('network_subnet_seq', 1, true)")    # index 0 used
    await db.execute("INSERT INTO networks (id, project_id, name, cidr, gateway, is_default) "
                     "VALUES ($1, $2, 'private', '10.0.0.0/24', '10.0.0.1', true)", nid, p)
    await db.execute("INSERT INTO subnets (network_id, ordinal, cidr, gateway) "
                     "VALUES ($1, 0, '10.0.0.0/24', '10.0.0.1')", nid)
    await db.execute("INSERT INTO fixed_ips (network_id, address, server_id) SELECT $1, "
                     "'10.0.0.2'::inet + g, gen_random_uuid() FROM generate_series(0, 252) g", nid)
    network = await start()
    port = await boot(network, p)
    # Grown by a /22, carved past the /24: index 1 of the /22s.
    assert (port.network_id, port.address, port.cidr) == (nid, "10.0.4.2", "10.0.4.0/22")
    assert await subnets(db, nid) == [(0, "10.0.0.0/24"), (1, "10.0.4.0/22")]
