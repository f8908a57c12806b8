"""The compute agent when the world moves under an operation: a delete during a
snapshot, a build taken to another host while it runs, a late copy of an older
request's message, and the reconcile loop's own stop going out through the
outbox (real PostgreSQL, RabbitMQ and network service, the fake driver in-process)."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from services.compute_agent.agent import ComputeAgent
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.reconcile import Reconciler, ReconcileSettings
from shared.contracts.compute import (
    ComputeMessage,
    DeleteServer,
    RebootServer,
    SnapshotServer,
    StopServer,
    host_queue,
)
from shared.db import actions, images
from shared.rpc.server import CallContext
from shared.states import VmState
from tests.integration.test_scheduler import eventually
from tests.integration.test_compute_agent import (  # noqa: F401  (fixtures)
    HOST,
    _placed_server,
    _row,
    agent,
)



async def _active(agent) -> uuid.UUID:
    build = await _placed_server(agent)
    await agent.handle(build, CallContext())
    assert (await _row(agent, build.server_id))["vm_state"] == VmState.ACTIVE
    return build.server_id


async def _begin(agent, sid, task: str, action: str) -> CallContext:
    rid = f"req-{uuid.uuid4()}"
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = $2, task_request_id = $3 "
                           "WHERE id = $1", sid, task, rid)
        await actions.start_action(conn, server_id=sid, project_id="p-agent", user_id="u",
                                   action=action, request_id=rid)
    return CallContext(request_id=rid)


async def _until_busy(agent, sid) -> None:
    """Wait until an operation on the server runs in the agent (it holds its lock)."""
    for _ in range(2000):
        if agent.busy(sid):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the operation never started")


def _slow(agent, **delays: float) -> ComputeAgent:
    """The same agent on a fake host whose operations take ``delays``."""
    fake = FakeSettings(**{"spawn_delay_s": 0.05, "destroy_delay_s": 0, **delays})
    return ComputeAgent(agent.settings, agent.worker, FakeDriver(fake, host=HOST))


async def test_a_snapshot_cut_short_by_a_delete_fails_its_image(agent, network):
    agent = _slow(agent, snapshot_delay_s=1.0)  # the disk copy takes a while
    sid = await _active(agent)
    image_id = uuid.uuid4()
    async with agent.worker.pool.acquire() as conn:
        await images.insert_snapshot(conn, image_id=image_id, name="snap", project_id="p-agent",
                                     server_id=sid, min_disk_gb=0, min_ram_mb=0, metadata={})
    ctx = await _begin(agent, sid, "image_snapshot", "createImage")
    snap = asyncio.create_task(agent.handle(SnapshotServer(server_id=sid, image_id=image_id,
                                                           name="snap"), ctx))
    await _until_busy(agent, sid)
    delete_ctx = await _begin(agent, sid, "deleting", "delete")  # the API's delete
    delete = asyncio.create_task(agent.handle(DeleteServer(server_id=sid), delete_ctx))
    await asyncio.wait_for(asyncio.gather(snap, delete), 20)

    assert (await _row(agent, sid))["vm_state"] == "deleted"
    async with agent.worker.pool.acquire() as conn:
        image = await conn.fetchrow("SELECT status, deleted_at FROM images WHERE id = $1",
                                    image_id)
        action = await actions.get(conn, sid, ctx.request_id)
    assert image["status"] != "SAVING"
    assert action["finish_time"] is not None  # the snapshot's action is closed too


async def test_a_build_taken_to_another_host_meanwhile_leaves_it_alone(agent, network):
    agent = _slow(agent, spawn_delay_s=1.0)
    build = await _placed_server(agent)
    sid = build.server_id
    task = asyncio.create_task(agent.handle(build, CallContext(request_id=None)))

    async def spawning() -> bool:
        return (await _row(agent, sid))["task_state"] == "spawning"
    await eventually(spawning)
    # This host was taken for dead: the sweep rescheduled the build, and another
    # host has it now, at the same step.
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET host = 'other-host' WHERE id = $1", sid)
        ports_before = await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1",
                                           sid)
    await asyncio.wait_for(task, 20)

    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["host"]) == (
        "building", "spawning", "other-host")  # not finished by the wrong host
    assert await agent.driver.get_info(sid) is None  # its own guest here is gone
    async with agent.worker.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1",
                                   sid) == ports_before == 1  # the other build's now


async def test_a_late_copy_of_an_older_requests_message_does_nothing(agent, network):
    sid = await _active(agent)
    first = await _begin(agent, sid, "rebooting", "reboot")
    await agent.handle(RebootServer(server_id=sid), first)
    second = await _begin(agent, sid, "rebooting", "reboot")
    boots = (await agent.driver.console_output(sid)).count("Booting the kernel.")
    # The first reboot's message, delivered again late, finds a reboot task that is
    # not its own: it leaves it to the second's message.
    await agent.handle(RebootServer(server_id=sid), CallContext(request_id=first.request_id,
                                                                redelivered=True))
    assert (await _row(agent, sid))["task_state"] == "rebooting"
    assert (await agent.driver.console_output(sid)).count("Booting the kernel.") == boots
    await agent.handle(RebootServer(server_id=sid), second)
    assert (await _row(agent, sid))["task_state"] is None


async def test_reconcile_stops_a_stopped_guest_through_a_message_of_the_outbox(
        agent, network, amqp_url):
    sid = await _active(agent)
    agent.driver.fake_host.stop(sid)  # the guest shut itself down
    relay = agent.worker.with_outbox()
    relay.start()
    try:
        counts = await Reconciler([agent], ReconcileSettings()).reconcile()
        assert counts == {"MarkStopped": 1}
        row = await _row(agent, sid)
        assert (row["vm_state"], row["task_state"]) == ("active", "powering-off")
        # The stop is a message on this host's queue, carrying the task's request.
        message = await _next_message(agent, host_queue(HOST))
        assert msgspec.json.decode(message.body, type=ComputeMessage) == StopServer(
            server_id=sid)
        rid = message.headers["x-compute-request-id"]
        assert rid == row["task_request_id"]
    finally:
        await relay.stop()
    await agent.handle(StopServer(server_id=sid), CallContext(request_id=rid))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("stopped", None, 4)
    async with agent.worker.pool.acquire() as conn:
        action = await actions.get(conn, sid, rid)
    assert action["action"] == "stop" and action["finish_time"] is not None
    assert action["message"] == "Stopped by its compute host: the guest shut down on its own."


async def _next_message(agent, queue: str, timeout: float = 10.0):
    channel = await agent.worker.connection.channel()
    try:
        q = await channel.declare_queue(queue, durable=True)
        deadline = asyncio.get_running_loop().time() + timeout
        while (m := await q.get(no_ack=True, fail=False)) is None:
            assert asyncio.get_running_loop().time() < deadline, "no message came"
            await asyncio.sleep(0.05)
        return m
    finally:
        await channel.close()
