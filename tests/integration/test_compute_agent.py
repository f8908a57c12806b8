"""The compute agent with its fake driver, against real PostgreSQL, RabbitMQ and
the real network service running in-process."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from services.compute_agent import delete as delete_module
from services.compute_agent.agent import ComputeAgent
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.settings import ComputeSettings, Settings
from services.network.app import create_worker as create_network_worker
from services.network.settings import Settings as NetworkSettings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import BuildServer, DeleteServer
from shared.db import hosts
from shared.worker import Worker

HOST = "agent-test-1"
FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")


async def _start_network(db_url: str, amqp_url: str):
    worker = await create_network_worker(NetworkSettings(
        database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url)))
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.2)
    return worker, task


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
    net, task = await _start_network(db_url, amqp_url)
    try:
        build = await _placed_server(agent)
        await agent.handle(build)
        row = await _row(agent, build.server_id)
        assert row["vm_state"] == "active" and row["task_state"] is None
        assert row["power_state"] == 1
        (port,) = row["addresses"]
        assert port["address"].startswith("10.") and port["mac"].startswith("fa:16:3e")
        assert await agent.driver.get_info(build.server_id) is not None

        # Delivered twice: the second build finds nothing to do.
        await agent.handle(build)
        assert len(await agent.driver.list_instances()) == 1

        async with agent.worker.pool.acquire() as conn:
            await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                               build.server_id)
        await agent.handle(DeleteServer(server_id=build.server_id))
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


async def test_build_without_network_service_ends_in_error_holding_nothing(agent):
    build = await _placed_server(agent)
    await agent.handle(build)
    row = await _row(agent, build.server_id)
    assert row["vm_state"] == "error" and row["task_state"] is None
    async with agent.worker.pool.acquire() as conn:
        fault = await conn.fetchrow("SELECT * FROM server_faults WHERE server_id = $1",
                                    build.server_id)
        assert await hosts.claim_of(conn, build.server_id) is None
    assert fault["code"] == 503 and "network" in fault["message"]
    assert await agent.driver.list_instances() == []


async def test_delete_that_keeps_failing_ends_in_error_and_can_be_retried(
        agent, db_url, amqp_url, monkeypatch):
    monkeypatch.setattr(delete_module, "FIRST_BACKOFF_S", 0.01)
    net, task = await _start_network(db_url, amqp_url)
    build = await _placed_server(agent)
    await agent.handle(build)
    net.stop()
    await task
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                           build.server_id)
    await agent.handle(DeleteServer(server_id=build.server_id))
    row = await _row(agent, build.server_id)
    assert row["vm_state"] == "error" and row["task_state"] is None
    async with agent.worker.pool.acquire() as conn:
        fault = await conn.fetchval(
            "SELECT message FROM server_faults WHERE server_id = $1 ORDER BY id DESC LIMIT 1",
            build.server_id)
    assert "try deleting it again" in fault

    net, task = await _start_network(db_url, amqp_url)
    try:
        async with agent.worker.pool.acquire() as conn:
            await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                               build.server_id)
        await agent.handle(DeleteServer(server_id=build.server_id))
        assert (await _row(agent, build.server_id))["vm_state"] == "deleted"
    finally:
        net.stop()
        await task
