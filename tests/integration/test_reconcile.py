"""The reconcile loop's executor: an agent in-process with the fake driver on a real
state directory, the network service, real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import uuid


from services.compute_agent.reconcile import Reconciler, ReconcileSettings
from shared.contracts.compute import BuildServer, DeleteServer
from shared.rpc.server import CallContext
from shared.teardown import delete_without_host
from tests.integration.test_compute_agent import _placed_server, _row, agent  # noqa: F401

SETTINGS = ReconcileSettings(interval_s=1, stuck_delete_s=60)



async def _active(agent) -> BuildServer:
    build = await _placed_server(agent)
    await agent.handle(build, CallContext())
    assert (await _row(agent, build.server_id))["vm_state"] == "active"
    return build


async def _ports(agent, sid) -> int:
    async with agent.worker.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1", sid)


async def test_a_delete_stuck_on_this_live_host_is_run_again(agent, network):
    build = await _active(agent)
    sid = build.server_id
    async with agent.worker.pool.acquire() as conn:  # its DeleteServer was lost long ago
        await conn.execute("UPDATE servers SET task_state = 'deleting', "
                           "updated_at = now() - interval '10 minutes' WHERE id = $1", sid)
    counts = await Reconciler([agent], SETTINGS).reconcile()
    assert counts == {"RetryDelete": 1}
    row = await _row(agent, sid)
    assert row["vm_state"] == "deleted"
    assert await agent.driver.get_info(sid) is None and await _ports(agent, sid) == 0


async def test_a_recent_delete_is_left_to_its_message(agent, network):
    build = await _active(agent)
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1",
                           build.server_id)
    assert await Reconciler([agent], SETTINGS).reconcile() == {}
    assert (await _row(agent, build.server_id))["task_state"] == "deleting"
    await agent.handle(DeleteServer(server_id=build.server_id), CallContext())
    assert (await _row(agent, build.server_id))["vm_state"] == "deleted"


async def test_a_server_deleted_without_its_host_keeps_its_address_until_the_guest_goes(
        agent, network):
    build = await _active(agent)
    sid = build.server_id
    # The host was down: the server was deleted without it, its fixed address kept.
    await delete_without_host(agent.worker.pool, agent.network_client(None), sid)
    assert (await _row(agent, sid))["vm_state"] == "deleted"
    assert await _ports(agent, sid) == 1
    assert await agent.driver.get_info(sid) is not None  # the guest still runs here

    counts = await Reconciler([agent], SETTINGS).reconcile()

    assert counts == {"DestroyOrphan": 1}
    assert await agent.driver.get_info(sid) is None
    assert await _ports(agent, sid) == 0  # only now may another server have the address


async def test_an_unknown_guest_is_destroyed_and_others_left_alone(agent, network):
    keep = await _active(agent)
    stray = uuid.uuid4()
    agent.driver.fake_host.create(stray, name="nobody-asked")
    counts = await Reconciler([agent], SETTINGS).reconcile()
    assert counts == {"DestroyOrphan": 1}
    assert await agent.driver.get_info(stray) is None
    assert await agent.driver.get_info(keep.server_id) is not None
    assert (await _row(agent, keep.server_id))["vm_state"] == "active"

