"""The compute agent with its fake driver, against real PostgreSQL, RabbitMQ and
the real network service running in-process."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from services.compute_agent.agent import ComputeAgent
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.settings import ComputeSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BuildServer, DeleteServer
from shared.db import hosts
from shared.errors import RpcTimeout
from shared.rpc.server import CallContext
from shared.worker import Worker
from tests.integration.conftest import start_network

HOST = "agent-test-1"
FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")


@pytest.fixture
async def agent(db_url, amqp_url):
    settings = Settings(
        database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=5),
        log=LogSettings(), health=HealthSettings(),
        compute=ComputeSettings(host=HOST, az="az1", network_timeout_s=0.5),
        fake=FakeSettings(spawn_delay_s=0.05, destroy_delay_s=0))
    worker = Worker("agent-test", database=settings.database, amqp=settings.amqp,
                    health=settings.health)
    await worker.open()
    a = ComputeAgent(settings, worker, FakeDriver(settings.fake, host=HOST))
    await a.report(starting=True)
    yield a
    await worker.rpc.close()
    await worker.connection.close()
    await worker.pool.close()


async def _placed_server(agent: ComputeAgent) -> BuildServer:
    sid = uuid.uuid4()
    async with agent.worker.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,
                                    vm_state, task_state, host, availability_zone, reservation_id)
               VALUES ($1, 'p-agent', 'u', 'vm', $2, '100', $3, 'building', 'scheduling', $4,
                       'az1', 'r-1')""", sid, IMAGE.id, msgspec.to_builtins(FLAVOR), HOST)
        assert await hosts.claim(conn, HOST, sid, 1024, 10, 1)
    return BuildServer(server_id=sid, project_id="p-agent", user_id="u", name="vm",
                       flavor=FLAVOR, image=IMAGE)


async def _row(agent: ComputeAgent, sid):
    async with agent.worker.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM servers WHERE id = $1", sid)


async def test_build_then_delete_through_the_network_service(agent, db_url, amqp_url):
    net, task = await start_network(db_url, amqp_url)
    try:
        build = await _placed_server(agent)
        await agent.handle(build, CallContext())
        row = await _row(agent, build.server_id)
        assert row["vm_state"] == "active" and row["task_state"] is None
        assert row["power_state"] == 1
        (port,) = row["addresses"]
        assert port["address"].startswith("10.") and port["mac"].startswith("fa:16:3e")
        assert await agent.driver.get_info(build.server_id) is not None

        # Delivered twice: the second build finds nothing to do.
        await agent.handle(build, CallContext())
        assert len(await agent.driver.list_instances()) == 1

        async with agent.worker.pool.acquire() as conn:
            await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                               build.server_id)
        await agent.handle(DeleteServer(server_id=build.server_id), CallContext())
        row = await _row(agent, build.server_id)
        assert row["vm_state"] == "deleted" and row["deleted_at"] is not None
        assert await agent.driver.list_instances() == []
        async with agent.worker.pool.acquire() as conn:
            assert await hosts.claim_of(conn, build.server_id) is None
            assert await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1",
                                       build.server_id) == 0
    finally:
        net.stop()
        await task


async def test_build_without_network_service_waits_for_it(agent, db_url, amqp_url):
    """The network service away is a transient failure: the build is left where it
    stopped (not ERROR) for the RPC layer to retry, and the next try finishes it."""
    build = await _placed_server(agent)
    with pytest.raises(RpcTimeout):
        await agent.handle(build, CallContext())
    row = await _row(agent, build.server_id)
    assert (row["vm_state"], row["task_state"]) == ("building", "networking")
    async with agent.worker.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM server_faults WHERE server_id = $1",
                                   build.server_id) == 0
        assert await hosts.claim_of(conn, build.server_id) is not None

    net, task = await start_network(db_url, amqp_url)
    try:
        await agent.handle(build, CallContext(redelivered=True))
    finally:
        net.stop()
        await task
    row = await _row(agent, build.server_id)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)


async def test_a_build_whose_retries_run_out_ends_in_error_holding_nothing(agent):
    build = await _placed_server(agent)
    with pytest.raises(RpcTimeout) as err:
        await agent.handle(build, CallContext())
    await agent.give_up(build, CallContext(), err.value)
    row = await _row(agent, build.server_id)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    async with agent.worker.pool.acquire() as conn:
        fault = await conn.fetchrow("SELECT * FROM server_faults WHERE server_id = $1",
                                    build.server_id)
        assert await hosts.claim_of(conn, build.server_id) is None
    assert fault["code"] == 500
    assert fault["message"] == (f"The build of instance {build.server_id} could not be "
                                "completed: a service it needs stayed unavailable for 300 s.")
    # What failed is for operators (details show to admins only, code 500).
    assert fault["details"] == ("RpcTimeout: No reply from network to AllocatePorts "
                                "within 0.5 s.")
    assert await agent.driver.list_instances() == []


async def test_a_delete_whose_network_service_is_away_is_retried_until_it_is_back(
        agent, db_url, amqp_url):
    net, task = await start_network(db_url, amqp_url)
    build = await _placed_server(agent)
    await agent.handle(build, CallContext())
    net.stop()
    await task
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                           build.server_id)
    with pytest.raises(RpcTimeout):
        await agent.handle(DeleteServer(server_id=build.server_id), CallContext())
    row = await _row(agent, build.server_id)
    assert (row["vm_state"], row["task_state"]) == ("active", "deleting")

    net, task = await start_network(db_url, amqp_url)
    try:
        await agent.handle(DeleteServer(server_id=build.server_id), CallContext(redelivered=True))
        assert (await _row(agent, build.server_id))["vm_state"] == "deleted"
    finally:
        net.stop()
        await task
