"""Floating IPs in the network service, against real PostgreSQL and RabbitMQ.

The service's own Worker (``services.network.app``) serves ``network`` and
``network.floating`` in-process on the test's vhost; the test calls them with
``FloatingIpClient`` and ``NetworkClient`` over a real RPC round trip, so the
faults are checked as the API receives them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from services.network import floating_ips
from services.network.app import create_worker
from services.network.settings import NetworkSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import Port
from shared.contracts.floating_ips import (
    AllocateFloatingIp,
    AssociateFloatingIp,
    DeallocateFloatingIp,
    DisassociateFloatingIp,
    FixedAddressNotOnServer,
    FloatingIp,
    FloatingIpClient,
    FloatingIpNotAssociated,
    FloatingIpNotFound,
    FloatingIpPoolNotFound,
    FloatingIpQuotaExceeded,
    NoFixedIpForServer,
    NoMoreFloatingIps,
)
from shared.contracts.network import AllocatePorts, DeallocatePorts, NetworkClient
from shared.db.pool import connect as db_connect
from shared.errors import Conflict, NotFound, OverLimit
from shared.rpc import RpcClient, connect

POOL = "public"


class Clients:
    def __init__(self, floating: FloatingIpClient, network: NetworkClient) -> None:
        self.floating = floating
        self.network = network


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await db_connect(db_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def start(db_url: str, amqp_url: str) -> AsyncIterator[Callable[..., Awaitable[Clients]]]:
    """Start the network service with the given ``[network]`` settings; clients to it."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def _start(**network: object) -> Clients:
        settings = Settings(database=DatabaseSettings(url=db_url, pool_min=1, pool_max=20),
                            amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=30),
                            log=LogSettings(), health=HealthSettings(port=0),
                            network=NetworkSettings(**network))
        worker = await create_worker(settings)
        task = asyncio.create_task(worker.run())
        connection = await connect(amqp_url)
        rpc = RpcClient(connection, timeout=30)
        await rpc.start()

        async def stop() -> None:
            await rpc.close()
            await connection.close()
            worker.stop()
            await asyncio.wait_for(task, 30)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

        stops.append(stop)
        return Clients(FloatingIpClient(rpc, request_id=None), NetworkClient(rpc, request_id=None))

    yield _start
    for stop in reversed(stops):
        await stop()


@pytest.fixture
async def svc(start: Callable[..., Awaitable[Clients]]) -> Clients:
    return await start()


def project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def allocate(c: Clients, project_id: str, *, quota: int = -1,
                   pool: str | None = None) -> FloatingIp:
    return await c.floating.allocate(AllocateFloatingIp(
        project_id=project_id, request_key=uuid.uuid4(), pool=pool, quota=quota))


async def server_with_ports(c: Clients, db: asyncpg.Connection, project_id: str,
                            *nets: uuid.UUID) -> tuple[uuid.UUID, list[Port]]:
    """A server row (so that its addresses cache can be seen) with its ports."""
    sid = uuid.uuid4()
    await db.execute(
        """INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,
                                task_state, reservation_id)
           VALUES ($1, $2, 'u', 'vm', '100', '{}', 'building', 'networking', 'r-1')""",
        sid, project_id)
    made = await c.network.allocate_ports(AllocatePorts(
        server_id=sid, project_id=project_id, host="h1", network_ids=nets))
    return sid, made


async def cache(db: asyncpg.Connection, sid: uuid.UUID) -> list[dict]:
    return await db.fetchval("SELECT addresses FROM servers WHERE id = $1", sid)


# --------------------------------------------------------------------------- allocation


async def test_allocate_gives_the_lowest_free_address_with_a_new_id(svc: Clients,
                                                                   db: asyncpg.Connection) -> None:
    p = project()
    a = await allocate(svc, p)
    b = await allocate(svc, p, pool=POOL)
    assert (a.address, b.address) == ("15.126.0.1", "15.126.0.2")
    assert a.pool == b.pool == POOL and a.project_id == p
    assert a.server_id is None and a.fixed_address is None
    assert b.id > a.id
    assert await db.fetchval("SELECT count(*) FROM floating_ips") == 254  # .1 to .254
    await svc.floating.deallocate(DeallocateFloatingIp(project_id=p, floating_ip_id=a.id))
    again = await allocate(svc, project())
    # The same address, but a new id: a stale id names nothing.
    assert again.address == a.address and again.id not in (a.id, b.id)
    with pytest.raises(FloatingIpNotFound):
        await svc.floating.deallocate(DeallocateFloatingIp(project_id=p, floating_ip_id=a.id))


async def test_unknown_pool_is_not_found(svc: Clients) -> None:
    with pytest.raises(FloatingIpPoolNotFound, match="Floating IP pool nova not found"):
        await allocate(svc, project(), pool="nova")
    assert await svc.floating.pools() == [POOL]


async def test_exhausted_pool_is_a_clear_fault_and_frees_up(start) -> None:
    c = await start(floating_pool_name="ext", floating_pool_cidr="198.51.100.0/29")
    p = project()
    got = [await allocate(c, p) for _ in range(6)]
    assert [f.address for f in got] == [f"198.51.100.{i}" for i in range(1, 7)]
    with pytest.raises(NoMoreFloatingIps, match="No more floating IPs in pool ext") as info:
        await allocate(c, project())
    assert isinstance(info.value, NotFound) and info.value.http_status == 404
    await c.floating.deallocate(DeallocateFloatingIp(project_id=p, floating_ip_id=got[3].id))
    assert (await allocate(c, project())).address == "198.51.100.4"


async def test_redelivered_allocation_returns_the_same_address(svc: Clients) -> None:
    p, key = project(), uuid.uuid4()
    msg = AllocateFloatingIp(project_id=p, request_key=key, quota=1)
    first = await svc.floating.allocate(msg)
    assert await svc.floating.allocate(msg) == first   # not over quota: it is the same one
    with pytest.raises(FloatingIpQuotaExceeded):
        await allocate(svc, p, quota=1)


async def test_quota_is_exact_under_30_concurrent_allocations(svc: Clients,
                                                              db: asyncpg.Connection) -> None:
    p = project()
    results = await asyncio.gather(*(allocate(svc, p, quota=20) for _ in range(30)),
                                   return_exceptions=True)
    won = [r for r in results if isinstance(r, FloatingIp)]
    lost = [r for r in results if not isinstance(r, FloatingIp)]
    assert len(won) == 20 and len({f.address for f in won}) == 20
    assert len({f.id for f in won}) == 20
    assert len(lost) == 10 and all(isinstance(e, FloatingIpQuotaExceeded) for e in lost)
    err = lost[0]
    # A quota fault is a 413 overLimit with Retry-After: 0, also once rebuilt from RPC.
    assert isinstance(err, OverLimit) and err.http_status == 413
    assert err.headers == {"Retry-After": "0"}
    assert "Quota exceeded for floating_ips" in err.message
    assert await db.fetchval("SELECT count(*) FROM floating_ips WHERE project_id = $1", p) == 20


async def test_concurrent_allocations_of_many_projects_never_share_an_address(
        start, db: asyncpg.Connection) -> None:
    c = await start(floating_pool_cidr="203.0.113.0/27")      # 30 addresses
    projects = [project() for _ in range(32)]
    results = await asyncio.gather(*(allocate(c, p) for p in projects), return_exceptions=True)
    won = [r for r in results if isinstance(r, FloatingIp)]
    assert len(won) == 30 and len({f.address for f in won}) == 30
    assert all(isinstance(r, NoMoreFloatingIps) for r in results if r not in won)
    owners = await db.fetch("SELECT host(address) AS a, project_id FROM floating_ips "
                            "WHERE project_id IS NOT NULL")
    assert {r["a"]: r["project_id"] for r in owners} == {f.address: f.project_id for f in won}


async def test_pool_sync_is_idempotent_concurrent_and_follows_the_configuration(
        db_url: str, db: asyncpg.Connection) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=4, max_size=4)
    try:
        async def sync(name: str, cidr: str) -> int:
            async with pool.acquire() as conn, conn.transaction():
                return await floating_ips.sync_pool(conn, name, ipaddress.IPv4Network(cidr))

        added = await asyncio.gather(*(sync("a", "192.0.2.0/28") for _ in range(4)))
        assert sum(added) == 14
        assert await sync("a", "192.0.2.0/28") == 0
        held = await db.fetchval(
            "UPDATE floating_ips SET id = 1, project_id = 'p' WHERE address = '192.0.2.3' "
            "RETURNING host(address)")
        # A new range, partly overlapping, under a new name: overlap renamed, free
        # addresses outside dropped, the allocated one kept.
        await sync("b", "192.0.2.8/29")
        rows = await db.fetch("SELECT host(address) AS a, pool FROM floating_ips ORDER BY address")
        assert [(r["a"], r["pool"]) for r in rows] == [
            (held, "a"), *((f"192.0.2.{i}", "b") for i in range(9, 15))]
    finally:
        await pool.close()


# --------------------------------------------------------------------------- association


async def test_associate_maps_to_the_first_fixed_address_and_fills_the_cache(
        svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    sid, [port] = await server_with_ports(svc, db, p)
    assert (await cache(db, sid))[0]["floating_ips"] == []
    fip = await allocate(svc, p)
    done = await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                            address=fip.address))
    assert (done.server_id, done.fixed_address) == (sid, port.address)
    [entry] = await cache(db, sid)
    assert entry["address"] == port.address and entry["floating_ips"] == [fip.address]
    assert entry["mac"] == port.mac and entry["network_name"] == "private"
    # Again with the same fixed address: nothing changes.
    assert await svc.floating.associate(AssociateFloatingIp(
        project_id=p, server_id=sid, address=fip.address, fixed_address=port.address)) == done

    gone = await svc.floating.disassociate(DisassociateFloatingIp(project_id=p, server_id=sid,
                                                                  address=fip.address))
    assert gone.server_id is None and gone.fixed_address is None
    assert (await cache(db, sid))[0]["floating_ips"] == []
    with pytest.raises(FloatingIpNotAssociated, match="is not associated with instance") as info:
        await svc.floating.disassociate(DisassociateFloatingIp(project_id=p, server_id=sid,
                                                               address=fip.address))
    assert isinstance(info.value, Conflict)


async def test_fixed_address_picks_the_port(svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    [default] = (await server_with_ports(svc, db, p))[1]
    other = uuid.uuid4()
    await db.execute("INSERT INTO networks (id, project_id, name, cidr, gateway) "
                     "VALUES ($1, $2, 'backend', '192.168.90.0/24', '192.168.90.1')", other, p)
    await db.execute("INSERT INTO subnets (network_id, ordinal, cidr, gateway) "
                     "VALUES ($1, 0, '192.168.90.0/24', '192.168.90.1')", other)
    await db.execute("INSERT INTO fixed_ips (network_id, address) "
                     "SELECT $1, '192.168.90.2'::inet + g FROM generate_series(0, 9) g", other)
    sid, ports = await server_with_ports(svc, db, p, default.network_id, other)
    fip = await allocate(svc, p)
    with pytest.raises(FixedAddressNotOnServer, match="not assigned to instance"):
        await svc.floating.associate(AssociateFloatingIp(
            project_id=p, server_id=sid, address=fip.address, fixed_address=default.address))
    done = await svc.floating.associate(AssociateFloatingIp(
        project_id=p, server_id=sid, address=fip.address, fixed_address="192.168.90.2"))
    assert done.fixed_address == "192.168.90.2" == ports[1].address
    entries = await cache(db, sid)
    assert [(e["network_name"], e["floating_ips"]) for e in entries] == [
        ("private", []), ("backend", [fip.address])]
    # Moving it to the server's other fixed address is allowed.
    await svc.floating.associate(AssociateFloatingIp(
        project_id=p, server_id=sid, address=fip.address, fixed_address=ports[0].address))
    assert [e["floating_ips"] for e in await cache(db, sid)] == [[fip.address], []]


async def test_association_faults(svc: Clients, db: asyncpg.Connection) -> None:
    p, q = project(), project()
    sid, _ = await server_with_ports(svc, db, p)
    theirs = await allocate(svc, q)
    with pytest.raises(FloatingIpNotFound):   # another project's address
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                         address=theirs.address))
    with pytest.raises(FloatingIpNotFound):   # nobody's
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                         address="15.126.0.200"))
    with pytest.raises(FloatingIpNotFound):   # not even an address
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                         address="nonsense"))
    mine = await allocate(svc, p)
    with pytest.raises(NoFixedIpForServer):   # a server without ports
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=uuid.uuid4(),
                                                         address=mine.address))
    # Another project's server (its ports are on that project's network).
    other_sid, _ = await server_with_ports(svc, db, q)
    with pytest.raises(NoFixedIpForServer):
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=other_sid,
                                                         address=mine.address))
    with pytest.raises(FloatingIpNotFound):
        await svc.floating.disassociate(DisassociateFloatingIp(project_id=p, server_id=other_sid,
                                                               address=theirs.address))


async def floats_on(db: asyncpg.Connection, sid: uuid.UUID) -> tuple[list[str], list[str]]:
    """The floating addresses the server's cache shows, and the ones the table maps to it."""
    shown = [a for e in await cache(db, sid) for a in e["floating_ips"]]
    held = [r["a"] for r in await db.fetch(
        "SELECT host(address) AS a FROM floating_ips WHERE server_id = $1 ORDER BY address",
        sid)]
    return shown, held


async def test_associating_an_address_on_another_server_moves_it(
        svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    s1, [port1] = await server_with_ports(svc, db, p)
    s2, [port2] = await server_with_ports(svc, db, p)
    fip = await allocate(svc, p)
    await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s1,
                                                     address=fip.address))
    moved = await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s2,
                                                             address=fip.address))
    # As Nova: off the first server, onto the second, both caches written at once.
    assert (moved.server_id, moved.fixed_address) == (s2, port2.address)
    assert await floats_on(db, s1) == ([], [])
    assert await floats_on(db, s2) == ([fip.address], [fip.address])
    with pytest.raises(FloatingIpNotAssociated):
        await svc.floating.disassociate(DisassociateFloatingIp(project_id=p, server_id=s1,
                                                               address=fip.address))
    # And back, naming the first server's fixed address.
    back = await svc.floating.associate(AssociateFloatingIp(
        project_id=p, server_id=s1, address=fip.address, fixed_address=port1.address))
    assert (back.server_id, back.fixed_address) == (s1, port1.address)
    assert await floats_on(db, s1) == ([fip.address], [fip.address])
    assert await floats_on(db, s2) == ([], [])


async def test_one_address_raced_onto_two_servers_ends_on_one_both_caches_true(
        svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    s1, _ = await server_with_ports(svc, db, p)
    s2, _ = await server_with_ports(svc, db, p)
    for _ in range(3):
        fip = await allocate(svc, p)
        targets = [s1, s2] * 8
        results = await asyncio.gather(
            *(svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s,
                                                         address=fip.address))
              for s in targets), return_exceptions=True)
        # Every one succeeds in its turn (each moves it); the last one holds it.
        assert all(isinstance(r, FloatingIp) for r in results), results
        holder = await db.fetchval("SELECT server_id FROM floating_ips WHERE id = $1", fip.id)
        other = s2 if holder == s1 else s1
        assert holder in (s1, s2)
        assert await floats_on(db, holder) == ([fip.address], [fip.address])
        assert await floats_on(db, other) == ([], [])
        await svc.floating.deallocate(DeallocateFloatingIp(project_id=p, floating_ip_id=fip.id))


async def test_moves_racing_the_old_servers_port_release_do_not_deadlock(
        svc: Clients, db: asyncpg.Connection) -> None:
    # DeallocatePorts holds a server's port lock, then updates its floating IP
    # rows; a move must take the old server's port lock before the row's, or
    # the two wait on each other (PostgreSQL then aborts one: an error here).
    p = project()
    s1, _ = await server_with_ports(svc, db, p)
    s2, _ = await server_with_ports(svc, db, p)
    fips = [await allocate(svc, p) for _ in range(3)]
    for _ in range(4):
        for f in fips:
            await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s1,
                                                             address=f.address))
        results = await asyncio.gather(
            *(svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s2,
                                                         address=f.address)) for f in fips),
            *(svc.network.deallocate_ports(DeallocatePorts(server_id=s1, keep_fixed=True))
              for _ in range(3)),
            return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        # Whatever the order, every address ends on s2 (moved there, or taken off
        # s1 by a release and then associated), and each cache shows the table.
        assert await floats_on(db, s1) == ([], [])
        shown, held = await floats_on(db, s2)
        assert set(shown) == set(held) == {f.address for f in fips}


async def test_deallocating_an_associated_address_disassociates_it(
        svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    sid, _ = await server_with_ports(svc, db, p)
    fip = await allocate(svc, p)
    await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                     address=fip.address))
    with pytest.raises(FloatingIpNotFound):  # another project cannot
        await svc.floating.deallocate(DeallocateFloatingIp(project_id=project(),
                                                           floating_ip_id=fip.id))
    await svc.floating.deallocate(DeallocateFloatingIp(project_id=p, floating_ip_id=fip.id))
    assert (await cache(db, sid))[0]["floating_ips"] == []
    row = await db.fetchrow("SELECT * FROM floating_ips WHERE address = $1::inet", fip.address)
    assert row["project_id"] is None and row["server_id"] is None and row["id"] is None


async def test_deallocating_the_servers_ports_takes_its_floating_ips_off(
        svc: Clients, db: asyncpg.Connection) -> None:
    p = project()
    sid, _ = await server_with_ports(svc, db, p)
    fips = [await allocate(svc, p) for _ in range(2)]
    for f in fips:
        await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=sid,
                                                         address=f.address))
    assert (await cache(db, sid))[0]["floating_ips"] == [f.address for f in fips]
    assert await svc.network.deallocate_ports(DeallocatePorts(server_id=sid)) == 1
    assert await cache(db, sid) == []
    rows = await db.fetch("SELECT project_id, server_id FROM floating_ips WHERE project_id = $1", p)
    assert len(rows) == 2 and all(r["server_id"] is None for r in rows)  # still the project's
    # Reusable on another server at once.
    s2, _ = await server_with_ports(svc, db, p)
    await svc.floating.associate(AssociateFloatingIp(project_id=p, server_id=s2,
                                                     address=fips[0].address))
