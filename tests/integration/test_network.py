"""The network service against real PostgreSQL and RabbitMQ.

Allocations go through a real RPC round trip: the service's own Worker (built by
``services.network.app``) serves the ``network`` queue on the test's vhost, and
the test calls it with ``NetworkClient`` over ``RpcClient``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import Port
from shared.contracts.network import (
    AllocatePorts,
    DeallocatePorts,
    NetworkClient,
    PortRequest,
    ReserveFixedIps,
)
from shared.errors import BadRequest, Conflict
from shared.rpc import RpcClient, connect
from services.network import networks, ports, security_groups
from services.network.app import create_worker
from services.network.errors import NoMoreFixedIps
from services.network.settings import NetworkSettings, Settings

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = {("icmp", -1, -1, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(db_url: str, amqp_url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=db_url, pool_min=1, pool_max=10),
                    amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=30),
                    log=LogSettings(), health=HealthSettings(port=0),
                    network=NetworkSettings())


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[None]:
    """The network service, running in-process until the test ends."""
    worker = await create_worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        # Worker.run took SIGTERM/SIGINT for this loop; give them back to pytest.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@pytest.fixture
async def network(service: None, amqp_url: str) -> AsyncIterator[NetworkClient]:
    connection = await connect(amqp_url)
    rpc = RpcClient(connection, timeout=30)
    await rpc.start()
    try:
        yield NetworkClient(rpc, request_id=None)
    finally:
        await rpc.close()
        await connection.close()


def new_project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def allocate(network: NetworkClient, project: str, server: uuid.UUID | None = None,
                   *nets: uuid.UUID) -> list[Port]:
    return await network.allocate_ports(AllocatePorts(
        server_id=server or uuid.uuid4(), project_id=project, host="host-1", network_ids=nets))


async def add_network(db: asyncpg.Connection, project: str, name: str, cidr: str) -> uuid.UUID:
    """A second (non-default) network, as the future network API would make it."""
    net = ipaddress.IPv4Network(cidr)
    nid = uuid.uuid4()
    await db.execute("INSERT INTO networks (id, project_id, name, cidr, gateway) VALUES ($1, $2, $3, $4, $5)",
                     nid, project, name, net, net.network_address + 1)
    await db.execute("INSERT INTO subnets (network_id, ordinal, cidr, gateway) VALUES ($1, 0, $2, $3)",
                     nid, net, net.network_address + 1)
    await db.execute("INSERT INTO fixed_ips (network_id, address) "
                     "SELECT $1, $2::inet + g FROM generate_series(0, 252) g", nid, net.network_address + 2)
    return nid


# --------------------------------------------------------------------------- allocation


async def test_first_allocation_creates_default_network_and_security_group(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project = new_project()
    [port] = await allocate(network, project)

    nets = await db.fetch("SELECT id, name, cidr, host(gateway) AS gw, is_default "
                          "FROM networks WHERE project_id = $1", project)
    assert len(nets) == 1
    net = nets[0]
    assert net["is_default"] and net["name"] == "private"
    assert net["cidr"].prefixlen == 22 and net["cidr"].subnet_of(ipaddress.IPv4Network("10.0.0.0/8"))
    assert (port.network_id, port.network_name, port.version) == (net["id"], "private", 4)
    address = ipaddress.IPv4Address(port.address)
    assert address in net["cidr"]
    assert address == net["cidr"].network_address + 2  # the lowest usable one
    assert net["gw"] == str(net["cidr"].network_address + 1)
    assert port.mac.startswith("fa:16:3e:") and len(port.mac) == 17
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE network_id = $1", net["id"]) == 1021
    assert await db.fetchval("SELECT cidr FROM subnets WHERE network_id = $1 AND ordinal = 0",
                             net["id"]) == net["cidr"]

    groups = await db.fetch("SELECT id, name FROM security_groups WHERE project_id = $1", project)
    assert [g["name"] for g in groups] == ["default"]
    rules = await db.fetch("SELECT ip_protocol, from_port, to_port, cidr::text AS cidr, group_id "
                           "FROM security_group_rules WHERE parent_group_id = $1", groups[0]["id"])
    assert len(rules) == 2
    assert {(r["ip_protocol"], r["from_port"], r["to_port"], r["cidr"]) for r in rules} == DEFAULT_RULES
    assert all(r["group_id"] is None for r in rules)


async def test_two_projects_get_different_subnets(network: NetworkClient) -> None:
    [a] = await allocate(network, new_project())
    [b] = await allocate(network, new_project())
    assert a.network_id != b.network_id
    net_a = ipaddress.IPv4Network(f"{a.address}/22", strict=False)
    net_b = ipaddress.IPv4Network(f"{b.address}/22", strict=False)
    assert net_a != net_b


async def test_a_project_keeps_its_network_for_later_servers(network: NetworkClient) -> None:
    project = new_project()
    [a] = await allocate(network, project)
    [b] = await allocate(network, project)
    assert a.network_id == b.network_id
    assert ipaddress.IPv4Address(b.address) == ipaddress.IPv4Address(a.address) + 1
    assert a.mac != b.mac


async def test_concurrent_allocations_get_distinct_addresses_and_macs(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project = new_project()
    await allocate(network, project)  # the network exists; now race for its addresses
    servers = [uuid.uuid4() for _ in range(50)]
    results = await asyncio.gather(*(allocate(network, project, s) for s in servers))

    ports = [p for r in results for p in r]
    assert [len(r) for r in results] == [1] * 50
    assert len({p.address for p in ports}) == 50
    assert len({p.mac for p in ports}) == 50
    assert len({p.id for p in ports}) == 50
    # Lowest free first: .2 went to the first server, these are .3 to .52.
    assert sorted(int(ipaddress.IPv4Address(p.address)) & 0xFF for p in ports) == list(range(3, 53))
    held = await db.fetch("SELECT server_id, host(address) AS a FROM fixed_ips "
                          "WHERE server_id = ANY($1::uuid[])", servers)
    by_server = {p_server: p.address for p_server, r in zip(servers, results) for p in r}
    assert {r["server_id"]: r["a"] for r in held} == by_server


async def test_reallocation_returns_the_same_ports(network: NetworkClient, db: asyncpg.Connection) -> None:
    project, server = new_project(), uuid.uuid4()
    first = await allocate(network, project, server)
    again = await allocate(network, project, server)
    assert again == first
    both = await asyncio.gather(*(allocate(network, project, server) for _ in range(5)))
    assert all(r == first for r in both)
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 1
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE server_id = $1", server) == 1


async def test_concurrent_first_allocations_of_one_server_make_one_port(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project, server = new_project(), uuid.uuid4()
    results = await asyncio.gather(*(allocate(network, project, server) for _ in range(6)))
    assert all(r == results[0] for r in results)
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 1


async def test_named_networks_in_the_order_asked(network: NetworkClient, db: asyncpg.Connection) -> None:
    project, server = new_project(), uuid.uuid4()
    [default] = await allocate(network, project)
    other = await add_network(db, project, "backend", "192.168.77.0/24")
    ports = await allocate(network, project, server, other, default.network_id)
    assert [p.network_id for p in ports] == [other, default.network_id]
    assert [p.network_name for p in ports] == ["backend", "private"]
    assert ports[0].address == "192.168.77.2"
    assert ipaddress.IPv4Address(ports[1].address) == ipaddress.IPv4Address(default.address) + 1
    assert await allocate(network, project, server) == ports  # same order when asked again


async def test_concurrent_first_use_of_a_project_makes_one_default_network(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project = new_project()
    results = await asyncio.gather(*(allocate(network, project) for _ in range(8)))
    assert len({r[0].network_id for r in results}) == 1
    assert len({r[0].address for r in results}) == 8
    assert await db.fetchval("SELECT count(*) FROM networks WHERE project_id = $1", project) == 1
    assert await db.fetchval("SELECT count(*) FROM security_groups WHERE project_id = $1", project) == 1
    assert await db.fetchval(
        "SELECT count(*) FROM security_group_rules r JOIN security_groups g ON g.id = r.parent_group_id "
        "WHERE g.project_id = $1", project) == 2


async def test_ensure_default_races_directly(db_url: str) -> None:
    """Many callers on their own connections, released at once, per project."""
    pool = await asyncpg.create_pool(db_url, min_size=12, max_size=12)
    try:
        async def ensure(project: str) -> tuple[networks.Network, bool]:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    made = await security_groups.ensure_default(conn, project)
                async with conn.transaction():
                    net = await networks.ensure_default(
                        conn, project, supernet=ipaddress.IPv4Network("10.0.0.0/8"), name="private")
                return net, made

        for _ in range(5):
            project = new_project()
            results = await asyncio.gather(*(ensure(project) for _ in range(12)))
            assert len({net.id for net, _ in results}) == 1
            assert sum(made for _, made in results) == 1
            async with pool.acquire() as conn:
                assert await conn.fetchval(
                    "SELECT count(*) FROM networks WHERE project_id = $1", project) == 1
                assert await conn.fetchval(
                    "SELECT count(*) FROM fixed_ips f JOIN networks n ON n.id = f.network_id "
                    "WHERE n.project_id = $1", project) == 1021
                assert await conn.fetchval(
                    "SELECT count(*) FROM security_group_rules r JOIN security_groups g "
                    "ON g.id = r.parent_group_id WHERE g.project_id = $1", project) == 2
    finally:
        await pool.close()


async def test_a_taken_subnet_is_skipped(network: NetworkClient, db: asyncpg.Connection) -> None:
    # A network made outside the sequence holds the next /22 in line.
    nxt = await db.fetchval("SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM network_subnet_seq")
    squatter = ipaddress.IPv4Network(("10.0.0.0", 22))
    squatter = ipaddress.IPv4Network((int(squatter.network_address) + 1024 * (nxt - 1), 22))
    await add_network(db, new_project(), "squatter", str(squatter))
    [port] = await allocate(network, new_project())
    assert ipaddress.IPv4Address(port.address) not in squatter


# --------------------------------------------------------------------------- errors


async def test_foreign_network_is_a_bad_request(network: NetworkClient, db: asyncpg.Connection) -> None:
    [theirs] = await allocate(network, new_project())
    mine, server = new_project(), uuid.uuid4()
    with pytest.raises(BadRequest, match=f"Network {theirs.network_id} could not be found"):
        await allocate(network, mine, server, theirs.network_id)
    unknown = uuid.uuid4()
    with pytest.raises(BadRequest, match=f"Network {unknown} could not be found"):
        await allocate(network, mine, server, unknown)
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 0
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE server_id = $1", server) == 0


async def test_full_network_is_a_clear_error_and_takes_nothing(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project, holder = new_project(), uuid.uuid4()
    [first] = await allocate(network, project)
    other = await add_network(db, project, "backend", "192.168.78.0/24")
    [_, held] = await allocate(network, project, holder, first.network_id, other)
    await db.execute("UPDATE fixed_ips SET server_id = gen_random_uuid() "
                     "WHERE network_id = $1 AND server_id IS NULL", other)
    server = uuid.uuid4()
    # The further network is full (only a default network grows); the free
    # address of the default one, asked for first, must not stay taken.
    with pytest.raises(NoMoreFixedIps, match=r"^No fixed IP addresses available for network "
                                             r"backend \(192\.168\.78\.0/24\)\.$"):
        await allocate(network, project, server, first.network_id, other)
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 0
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE server_id = $1", server) == 0
    # Freeing one address makes room again.
    assert await network.deallocate_ports(DeallocatePorts(server_id=holder)) == 2
    [_, again] = await allocate(network, project, server, first.network_id, other)
    assert (again.network_id, again.address) == (other, held.address)


# --------------------------------------------------------------------------- deallocation


async def test_deallocate_frees_the_address_for_the_next_server(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project = new_project()
    s1, s2, s3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    [p1] = await allocate(network, project, s1)
    [p2] = await allocate(network, project, s2)
    assert await network.deallocate_ports(DeallocatePorts(server_id=s1)) == 1
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", s1) == 0
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE server_id = $1", s1) == 0
    # Free for the next server: one that names it gets it.
    [p3] = await allocate_req(network, project, s3, req(p1.network_id, p1.address))
    assert p3.address == p1.address
    assert p3.id != p1.id
    assert [p2] == await allocate(network, project, s2)  # the other server kept its port


async def test_deallocate_twice_frees_nothing_the_second_time(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project, server = new_project(), uuid.uuid4()
    [default] = await allocate(network, project)
    other = await add_network(db, project, "backend", "192.168.79.0/24")
    await allocate(network, project, server, default.network_id, other)
    assert await network.deallocate_ports(DeallocatePorts(server_id=server)) == 2
    assert await network.deallocate_ports(DeallocatePorts(server_id=server)) == 0
    assert await network.deallocate_ports(DeallocatePorts(server_id=uuid.uuid4())) == 0


# --------------------------------------------------------------------------- security groups


async def test_effective_rules_of_a_servers_groups(db: asyncpg.Connection) -> None:
    project = new_project()
    async with db.transaction():
        assert await security_groups.ensure_default(db, project) is True
    async with db.transaction():
        assert await security_groups.ensure_default(db, project) is False
    web = await db.fetchval("INSERT INTO security_groups (project_id, name) VALUES ($1, 'web') RETURNING id",
                            project)
    default_id = await db.fetchval(
        "SELECT id FROM security_groups WHERE project_id = $1 AND name = 'default'", project)
    await db.executemany(
        "INSERT INTO security_group_rules (parent_group_id, ip_protocol, from_port, to_port, cidr, group_id) "
        "VALUES ($1, $2, $3, $4, $5::cidr, $6)",
        [(web, "tcp", 80, 80, "0.0.0.0/0", None),
         (web, "tcp", 22, 22, "0.0.0.0/0", None),      # the same as a default rule
         (web, None, None, None, None, default_id)])   # from servers of `default`
    # Another project's group of the same name adds nothing.
    async with db.transaction():
        await security_groups.ensure_default(db, new_project())
    await db.execute("INSERT INTO security_groups (project_id, name) VALUES ($1, 'web')", new_project())

    rules = await security_groups.effective_rules(db, project, ["default", "web", "gone"])
    assert {(r.ip_protocol, r.from_port, r.to_port, r.cidr, r.source_group) for r in rules} == {
        ("icmp", -1, -1, "0.0.0.0/0", None), ("tcp", 22, 22, "0.0.0.0/0", None),
        ("tcp", 80, 80, "0.0.0.0/0", None), (None, None, None, None, "default")}
    assert len(rules) == 4
    only_default = await security_groups.effective_rules(db, project, ["default"])
    assert {(r.ip_protocol, r.from_port, r.to_port, r.cidr) for r in only_default} == DEFAULT_RULES
    assert await security_groups.effective_rules(db, project, []) == []


# --------------------------------------------------------------------------- the process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_process_serves_healthz_and_rpc_and_stops_on_sigterm(db_url: str, amqp_url: str) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBUS_")}
    env.update(NIMBUS_DATABASE_URL=db_url, NIMBUS_AMQP_URL=amqp_url, NIMBUS_HEALTH_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "services.network"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "no /healthz within 30 s"
                await asyncio.sleep(0.2)
        assert status == 200, body
        assert b'"database":"ok"' in body and b'"broker":"ok"' in body

        connection = await connect(amqp_url)
        try:
            rpc = RpcClient(connection, timeout=30)
            await rpc.start()
            [port_] = await NetworkClient(rpc, request_id=None).allocate_ports(
                AllocatePorts(server_id=uuid.uuid4(), project_id=new_project(), host="h"))
            assert port_.network_name == "private"
            await rpc.close()
        finally:
            await connection.close()

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert code == 0, out
        assert '"event": "worker.stopped"' in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- fixed IPs asked for


def req(network_id: uuid.UUID, fixed_ip: str | None = None) -> PortRequest:
    return PortRequest(network_id=network_id, fixed_ip=fixed_ip)


async def allocate_req(network: NetworkClient, project: str, server: uuid.UUID,
                       *requests: PortRequest) -> list[Port]:
    return await network.allocate_ports(AllocatePorts(
        server_id=server, project_id=project, host="host-1", requests=requests))


async def test_a_named_fixed_ip_is_the_one_given(network: NetworkClient,
                                                 db: asyncpg.Connection) -> None:
    project = new_project()
    [default] = await allocate(network, project)
    net = ipaddress.IPv4Network(f"{default.address}/22", strict=False)
    wanted = str(net.network_address + 777)
    server = uuid.uuid4()
    [port] = await allocate_req(network, project, server, req(default.network_id, wanted))
    assert port.address == wanted
    # The next free address after the last one handed out goes to the next server.
    [nxt] = await allocate(network, project)
    assert ipaddress.IPv4Address(nxt.address) == ipaddress.IPv4Address(default.address) + 1
    # network_ids alone still work (a v1 sender).
    [old] = await allocate(network, project, uuid.uuid4(), default.network_id)
    assert ipaddress.IPv4Address(old.address) == ipaddress.IPv4Address(default.address) + 2
    with pytest.raises(BadRequest, match=f"Fixed IP address {wanted} is already in use"):
        await allocate_req(network, project, uuid.uuid4(), req(default.network_id, wanted))


@pytest.mark.parametrize("offset", [0, 1, 1023, 1024, -1])
async def test_a_fixed_ip_outside_what_servers_can_have_is_refused(
        network: NetworkClient, db: asyncpg.Connection, offset: int) -> None:
    project, server = new_project(), uuid.uuid4()
    [default] = await allocate(network, project)
    net = ipaddress.IPv4Network(f"{default.address}/22", strict=False)
    bad = str(net.network_address + offset)   # network, gateway, broadcast, outside
    with pytest.raises(BadRequest, match="is not an address servers can have on network private"):
        await allocate_req(network, project, server, req(default.network_id, bad))
    with pytest.raises(BadRequest, match="Invalid fixed IP address"):
        await allocate_req(network, project, server, req(default.network_id, "10.0.0.300"))
    assert await db.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", server) == 0


async def test_reservations_hold_an_address_for_one_server(network: NetworkClient,
                                                           db: asyncpg.Connection) -> None:
    project = new_project()
    [default] = await allocate(network, project)
    lowest_free = str(ipaddress.IPv4Address(default.address) + 1)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert await network.reserve_fixed_ips(ReserveFixedIps(
        server_id=a, project_id=project, requests=(req(default.network_id, lowest_free),))) == 1
    # Idempotent for the same server, refused to another, skipped by automatic allocation.
    assert await network.reserve_fixed_ips(ReserveFixedIps(
        server_id=a, project_id=project, requests=(req(default.network_id, lowest_free),))) == 1
    with pytest.raises(BadRequest, match="already in use"):
        await network.reserve_fixed_ips(ReserveFixedIps(
            server_id=b, project_id=project, requests=(req(default.network_id, lowest_free),)))
    [auto] = await allocate(network, project, b)
    assert auto.address != lowest_free
    # The server it was reserved for gets it when built.
    [port] = await allocate_req(network, project, a, req(default.network_id, lowest_free))
    assert port.address == lowest_free
    # Another project's network cannot be reserved in.
    with pytest.raises(BadRequest, match="could not be found"):
        await network.reserve_fixed_ips(ReserveFixedIps(
            server_id=uuid.uuid4(), project_id=new_project(),
            requests=(req(default.network_id, lowest_free),)))
    # Freeing the server frees the address.
    assert await network.deallocate_ports(DeallocatePorts(server_id=a)) == 1
    c = uuid.uuid4()
    await network.reserve_fixed_ips(ReserveFixedIps(
        server_id=c, project_id=project, requests=(req(default.network_id, lowest_free),)))
    assert await network.deallocate_ports(DeallocatePorts(server_id=c)) == 0  # no port, yet freed
    assert await db.fetchval("SELECT server_id FROM fixed_ips WHERE network_id = $1 "
                             "AND address = $2::inet", default.network_id, lowest_free) is None


async def test_concurrent_requests_for_one_fixed_ip_give_it_to_one_server(
        network: NetworkClient, db: asyncpg.Connection) -> None:
    project = new_project()
    [default] = await allocate(network, project)
    for round_ in range(3):
        wanted = str(ipaddress.IPv4Address(default.address) + 100 + round_)
        servers = [uuid.uuid4() for _ in range(12)]
        # Half reserve, half allocate outright: every path guards the same row.
        calls = [network.reserve_fixed_ips(ReserveFixedIps(
                    server_id=s, project_id=project, requests=(req(default.network_id, wanted),)))
                 if i % 2 else allocate_req(network, project, s, req(default.network_id, wanted))
                 for i, s in enumerate(servers)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        winners = [s for s, r in zip(servers, results) if not isinstance(r, Exception)]
        assert len(winners) == 1, results
        assert all(isinstance(r, BadRequest) and "already in use" in r.message
                   for r in results if isinstance(r, Exception))
        assert await db.fetchval("SELECT server_id FROM fixed_ips WHERE network_id = $1 "
                                 "AND address = $2::inet", default.network_id, wanted) == winners[0]


async def test_stale_reservations_are_swept(network: NetworkClient,
                                            db: asyncpg.Connection) -> None:
    project = new_project()
    [default] = await allocate(network, project)
    base = ipaddress.IPv4Address(default.address)
    never, deleted, live, young = (uuid.uuid4() for _ in range(4))
    for i, sid in enumerate((never, deleted, live, young)):
        await network.reserve_fixed_ips(ReserveFixedIps(
            server_id=sid, project_id=project,
            requests=(req(default.network_id, str(base + 10 + i)),)))
    for sid, state in ((deleted, "deleted"), (live, "error")):
        await db.execute(
            """INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,
                                    reservation_id, deleted_at)
               VALUES ($1, $2, 'u', 'vm', '100', '{"vcpus": 1, "ram_mb": 512}', $3, 'r-1',
                       CASE WHEN $3 = 'deleted' THEN now() END)""", sid, project, state)
    await db.execute("UPDATE fixed_ips SET reserved_at = now() - interval '1 hour' "
                     "WHERE server_id = ANY($1::uuid[])", [never, deleted, live])
    assert await ports.sweep_reservations(db, older_than_s=600) == 2
    held = {r["server_id"] for r in await db.fetch(
        "SELECT server_id FROM fixed_ips WHERE network_id = $1 AND server_id IS NOT NULL",
        default.network_id)}
    assert never not in held and deleted not in held
    assert {live, young} <= held and default.network_id  # the live one and the young one stay


async def test_allocation_writes_the_servers_addresses_cache(network: NetworkClient,
                                                             db: asyncpg.Connection) -> None:
    project, sid = new_project(), uuid.uuid4()
    await db.execute(
        """INSERT INTO servers (id, project_id, user_id, name, flavor_id, flavor, vm_state,
                                task_state, reservation_id)
           VALUES ($1, $2, 'u', 'vm', '100', '{"vcpus": 1, "ram_mb": 512}', 'building',
                   'networking', 'r-1')""",
        sid, project)
    [port] = await allocate(network, project, sid)
    [entry] = msgspec.json.decode(await db.fetchval(
        "SELECT addresses::text FROM servers WHERE id = $1", sid))
    assert msgspec.convert(entry, Port) == port   # a reader of Port sees the port
    assert entry["floating_ips"] == []
    await network.deallocate_ports(DeallocatePorts(server_id=sid))
    assert await db.fetchval("SELECT addresses::text FROM servers WHERE id = $1", sid) == "[]"


# --------------------------------------------------------------------------- further networks


SUPERNET = ipaddress.IPv4Network("10.0.0.0/8")


async def test_create_network_makes_the_default_first_then_carves_or_takes_a_cidr(
        db: asyncpg.Connection) -> None:
    project = new_project()
    backend = await networks.create(db, project, "backend", supernet=SUPERNET,
                                    default_name="private")
    nets = await networks.of_project(db, project)
    assert [(n.name, n.is_default) for n in nets] == [("private", True), ("backend", False)]
    assert ipaddress.IPv4Network(backend.cidr).prefixlen == 22
    assert ipaddress.IPv4Network(backend.cidr).subnet_of(SUPERNET)
    assert await db.fetchval("SELECT count(*) FROM fixed_ips WHERE network_id = $1",
                             backend.id) == 1021
    storage = await networks.create(db, project, "storage", supernet=SUPERNET,
                                    default_name="private",
                                    cidr=networks.parse_cidr("172.20.0.0/28"))
    assert (storage.cidr, storage.gateway) == ("172.20.0.0/28", "172.20.0.1")
    assert [r["a"] for r in await db.fetch(
        "SELECT host(address) AS a FROM fixed_ips WHERE network_id = $1 ORDER BY address",
        storage.id)] == [f"172.20.0.{i}" for i in range(2, 15)]

    with pytest.raises(Conflict, match="already has a network named 'backend'"):
        await networks.create(db, project, "backend", supernet=SUPERNET, default_name="private")
    with pytest.raises(Conflict, match="overlaps network storage"):
        await networks.create(db, new_project(), "x", supernet=SUPERNET, default_name="private",
                              cidr=networks.parse_cidr("172.20.0.0/16"))
    for bad in ("172.20.0.1/28", "10.0.0.0/8", "10.1.2.0/31", "fd00::/64", "junk"):
        with pytest.raises(ValueError):
            networks.parse_cidr(bad)


async def test_a_carved_subnet_skips_those_a_wider_network_overlaps(
        db: asyncpg.Connection) -> None:
    owner = new_project()
    async with db.transaction():   # its default first, so that create() carves nothing
        await networks.ensure_default(db, owner, supernet=SUPERNET, name="private", prefixlen=24)
    # The index carved next is nextval - 1: make it even, and put a /23 over it
    # and the one after.
    index = await db.fetchval("SELECT last_value FROM network_subnet_seq")
    index += index % 2
    await db.execute("SELECT setval('network_subnet_seq', $1, true)", index)
    wide = ipaddress.IPv4Network((int(SUPERNET.network_address) + 256 * index, 23))
    await networks.create(db, owner, "wide", supernet=SUPERNET, default_name="private",
                          cidr=wide, prefixlen=24)
    async with db.transaction():
        net = await networks.ensure_default(db, new_project(), supernet=SUPERNET, name="private",
                                            prefixlen=24)
    carved = ipaddress.IPv4Network(net.cidr)
    assert carved.network_address == wide.broadcast_address + 1   # index + 2
