"""The compute agent carrying out reboot, stop, start, rescue and unrescue through its
operation runner, and finishing them when their message comes again after the agent
died mid-way (real PostgreSQL).

The agent runs in-process with the fake driver. A "restart" is a new agent on the
same driver: the guests outlive the agent, as a real hypervisor's do; a new
driver stands for a host that lost its guests. After a restart nothing runs at
start: the broker delivers the unacked message again (``redelivered``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from tests.unit.compute_agent.guests import guest_spec
from services.compute_agent.agent import ComputeAgent
from services.compute_agent.drivers import GuestSpec
from services.compute_agent.drivers.fake import FakeDriver, FakeSettings
from services.compute_agent.settings import ComputeSettings, Settings
from shared.config import AmqpSettings, DatabaseSettings, HealthSettings, LogSettings
from shared.contracts.common import FlavorSpec, ImageSpec
from shared.contracts.compute import (
    DeleteServer,
    GetConsoleOutput,
    RebootServer,
    RescueServer,
    StartServer,
    StopServer,
    UnrescueServer,
)
from shared.db import actions, hosts
from shared.errors import Conflict, DatabaseUnavailable
from shared.rpc.server import CallContext
from shared.states import TaskState
from shared.worker import Worker
from tests.integration.conftest import start_network

HOST = "recover-test-1"
FLAVOR = FlavorSpec(id="100", name="standard.xsmall", ram_mb=1024, disk_gb=10, vcpus=1)
IMAGE = ImageSpec(id=uuid.uuid4(), name="cirros")
FAKE = FakeSettings(spawn_delay_s=0.01, destroy_delay_s=0, reboot_delay_s=0.05,
                    power_off_delay_s=0.05, power_on_delay_s=0.05, rescue_delay_s=0.05)


def _settings(db_url: str, amqp_url: str) -> Settings:
    return Settings(
        database=DatabaseSettings(url=db_url), amqp=AmqpSettings(url=amqp_url, rpc_timeout_s=5),
        log=LogSettings(), health=HealthSettings(),
        compute=ComputeSettings(host=HOST, az="az1", network_timeout_s=0.5), fake=FAKE)


@pytest.fixture
async def worker(db_url, amqp_url) -> AsyncIterator[Worker]:
    settings = _settings(db_url, amqp_url)
    w = Worker("recover-test", database=settings.database, amqp=settings.amqp,
               health=settings.health)
    await w.open()
    yield w
    await w.rpc.close()
    await w.connection.close()
    await w.pool.close()


def _agent(worker: Worker, driver: FakeDriver) -> ComputeAgent:
    settings = _settings("unused", "unused")
    return ComputeAgent(settings, worker, driver)


@pytest.fixture
async def agent(worker) -> ComputeAgent:
    a = _agent(worker, FakeDriver(FAKE, host=HOST))
    await a.report(starting=True)
    return a


async def _server(agent: ComputeAgent, *, vm_state: str = "active", guest: bool = True):
    """An ACTIVE server of this host with its guest running (as a build leaves it)."""
    sid = uuid.uuid4()
    async with agent.worker.pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO servers (id, project_id, user_id, name, image_id, flavor_id, flavor,
                                    vm_state, task_state, power_state, host, availability_zone,
                                    reservation_id)
               VALUES ($1, 'p-rec', 'u', 'vm', $2, '100', $3, $4, NULL, 1, $5, 'az1', 'r-1')""",
            sid, IMAGE.id, msgspec.to_builtins(FLAVOR), vm_state, HOST)
        assert await hosts.claim(conn, HOST, sid, 1024, 10, 1)
    if guest:
        await agent.driver.spawn(guest_spec(server_id=sid, name="vm", flavor=FLAVOR, image=IMAGE))
    return sid


async def _begin(agent: ComputeAgent, sid, task: TaskState, action: str) -> CallContext:
    """What the API's cast_action does: the task and an instance action; the context
    its message arrives with."""
    rid = f"req-{uuid.uuid4()}"
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = $2 WHERE id = $1", sid, task.value)
        await actions.start_action(conn, server_id=sid, project_id="p-rec", user_id="u",
                                   action=action, request_id=rid)
    return CallContext(request_id=rid)


async def _row(agent: ComputeAgent, sid):
    async with agent.worker.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM servers WHERE id = $1", sid)


async def _action(agent: ComputeAgent, sid, rid: str):
    async with agent.worker.pool.acquire() as conn:
        action = await actions.get(conn, sid, rid)
        events = await actions.events(conn, action["id"])
    return action, {e["event"]: e for e in events}


async def _faults(agent: ComputeAgent, sid) -> list[str]:
    async with agent.worker.pool.acquire() as conn:
        rows = await conn.fetch("SELECT message FROM server_faults WHERE server_id = $1 "
                                "ORDER BY id", sid)
    return [r["message"] for r in rows]


async def _console(agent: ComputeAgent, sid) -> str:
    return await agent.handle(GetConsoleOutput(server_id=sid), CallContext())


# ---- the actions, one message each ------------------------------------------

@pytest.mark.parametrize("hard", [False, True])
async def test_reboot_boots_the_guest_again_and_ends_active(agent, hard):
    sid = await _server(agent)
    task = TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING
    ctx = await _begin(agent, sid, task, "reboot")
    rid = ctx.request_id
    await agent.handle(RebootServer(server_id=sid, hard=hard), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert (await _console(agent, sid)).count("Booting the kernel.") == 2
    action, events = await _action(agent, sid, rid)
    assert action["finish_time"] is not None and action["message"] is None
    assert events["compute_reboot_instance"]["result"] == "Success"
    assert events["compute_reboot_instance"]["host"] == HOST


async def test_stop_then_start(agent):
    sid = await _server(agent)
    ctx = await _begin(agent, sid, TaskState.POWERING_OFF, "stop")
    await agent.handle(StopServer(server_id=sid), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("stopped", None, 4)
    rid = ctx.request_id
    assert (await _action(agent, sid, rid))[1]["compute_stop_instance"]["result"] == "Success"

    ctx = await _begin(agent, sid, TaskState.POWERING_ON, "start")
    rid = ctx.request_id
    await agent.handle(StartServer(server_id=sid), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert (await _action(agent, sid, rid))[1]["compute_start_instance"]["result"] == "Success"


async def test_rescue_then_unrescue(agent):
    sid = await _server(agent)
    ctx = await _begin(agent, sid, TaskState.RESCUING, "rescue")
    rid = ctx.request_id
    await agent.handle(RescueServer(server_id=sid, admin_pass="pw", rescue_image=IMAGE), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("rescued", None, 1)
    assert (await agent.driver.get_info(sid)).rescued
    assert (await _action(agent, sid, rid))[1]["compute_rescue_instance"]["result"] == "Success"

    ctx = await _begin(agent, sid, TaskState.UNRESCUING, "unrescue")
    rid = ctx.request_id
    await agent.handle(UnrescueServer(server_id=sid), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert not (await agent.driver.get_info(sid)).rescued
    assert (await _action(agent, sid, rid))[1]["compute_unrescue_instance"]["result"] == "Success"


async def test_a_message_delivered_twice_acts_once(agent):
    sid = await _server(agent)
    ctx = await _begin(agent, sid, TaskState.REBOOTING, "reboot")
    await agent.handle(RebootServer(server_id=sid), ctx)
    await agent.handle(RebootServer(server_id=sid), ctx)
    assert (await _console(agent, sid)).count("Booting the kernel.") == 2
    # And a message for a task the server is not in (a HARD one for a SOFT task) does nothing.
    ctx = await _begin(agent, sid, TaskState.REBOOTING, "reboot")
    await agent.handle(RebootServer(server_id=sid, hard=True), ctx)
    assert (await _row(agent, sid))["task_state"] == "rebooting"


async def test_an_action_the_driver_fails_ends_in_error_with_a_fault(agent):
    sid = await _server(agent, guest=False)  # the hypervisor has no such guest
    ctx = await _begin(agent, sid, TaskState.POWERING_OFF, "stop")
    rid = ctx.request_id
    await agent.handle(StopServer(server_id=sid), ctx)
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await _faults(agent, sid)
    assert fault.startswith(f"The stop of instance {sid} failed: no guest")
    action, events = await _action(agent, sid, rid)
    assert action["finish_time"] is not None and action["message"] == fault
    assert events["compute_stop_instance"]["result"] == "Error"


async def test_a_delete_during_an_action_waits_for_it_then_wins(agent, db_url, amqp_url):
    net, net_task = await start_network(db_url, amqp_url)  # the delete frees the ports
    try:
        sid = await _server(agent)
        ctx = await _begin(agent, sid, TaskState.REBOOTING_HARD, "reboot")
        rid = ctx.request_id
        reboot = asyncio.create_task(agent.handle(RebootServer(server_id=sid, hard=True), ctx))
        while not agent.busy(sid):  # the driver is rebooting the guest
            await asyncio.sleep(0)
        async with agent.worker.pool.acquire() as conn:  # the API's delete
            await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1", sid)
        # Queued behind the reboot's lock.
        await agent.handle(DeleteServer(server_id=sid), CallContext(request_id=f"req-{uuid.uuid4()}"))
        assert reboot.done()
        await reboot
    finally:
        net.stop()
        await net_task
    row = await _row(agent, sid)
    assert row["vm_state"] == "deleted" and row["deleted_at"] is not None
    assert await agent.driver.get_info(sid) is None
    action, _ = await _action(agent, sid, rid)
    assert action["finish_time"] is not None  # the reboot's action is not left open
    async with agent.worker.pool.acquire() as conn:
        assert await hosts.claim_of(conn, sid) is None


async def test_console_of_a_server_without_a_guest_is_a_conflict(agent):
    sid = await _server(agent, guest=False)
    with pytest.raises(Conflict, match="not ready"):
        await _console(agent, sid)


async def test_console_tail(agent):
    sid = await _server(agent)
    full = await agent.handle(GetConsoleOutput(server_id=sid), CallContext())
    last3 = await agent.handle(GetConsoleOutput(server_id=sid, length=3), CallContext())
    # Nova's cut: the log ends in a newline, so its last 3 pieces are 2 lines and "".
    assert full.endswith(last3) and last3.count("\n") == 2 and last3.endswith("vm login:\n")
    assert full.split("\n")[-3:] == [*last3.splitlines(), ""]


# ---- after a restart: the message comes again -------------------------------

async def _restart(agent: ComputeAgent, *, guests_survive: bool = True) -> ComputeAgent:
    """A new agent process on the host (same driver: the guests outlived the agent)."""
    driver = agent.driver if guests_survive else FakeDriver(FAKE, host=HOST)
    again = _agent(agent.worker, driver)
    await again.report(starting=True)
    return again


def _message(task: TaskState, sid):
    return {TaskState.REBOOTING: RebootServer(server_id=sid),
            TaskState.REBOOTING_HARD: RebootServer(server_id=sid, hard=True),
            TaskState.POWERING_OFF: StopServer(server_id=sid),
            TaskState.POWERING_ON: StartServer(server_id=sid),
            TaskState.UNRESCUING: UnrescueServer(server_id=sid)}[task]


@pytest.mark.parametrize(("task", "vm_state", "power", "event"), [
    (TaskState.REBOOTING, "active", 1, "compute_reboot_instance"),
    (TaskState.REBOOTING_HARD, "active", 1, "compute_reboot_instance"),
    (TaskState.POWERING_OFF, "stopped", 4, "compute_stop_instance"),
    (TaskState.UNRESCUING, "active", 1, "compute_unrescue_instance"),
])
async def test_an_action_cut_short_by_a_restart_ends_when_its_message_comes_again(
        agent, task, vm_state, power, event):
    sid = await _server(agent)
    if task is TaskState.UNRESCUING:
        await agent.driver.rescue(sid, admin_pass="x", image=None)
    ctx = await _begin(agent, sid, task, task.value)
    again = await _restart(agent)

    await again.handle(_message(task, sid), CallContext(request_id=ctx.request_id,
                                                        redelivered=True))

    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == (vm_state, None, power)
    action, recorded = await _action(again, sid, ctx.request_id)
    assert action["finish_time"] is not None and recorded[event]["result"] == "Success"
    assert recorded[event]["host"] == HOST
    # Delivered once more (acked late): nothing more happens.
    boots = (await _console(again, sid)).count("Booting the kernel.")
    await again.handle(_message(task, sid), CallContext(request_id=ctx.request_id,
                                                        redelivered=True))
    assert (await _console(again, sid)).count("Booting the kernel.") == boots
    assert (await _row(again, sid))["task_state"] is None


async def test_a_rescue_the_driver_completed_before_the_restart_is_recorded(agent):
    sid = await _server(agent)
    await agent.driver.rescue(sid, admin_pass="pw", image=None)  # done, but not recorded
    ctx = await _begin(agent, sid, TaskState.RESCUING, "rescue")
    again = await _restart(agent)
    await again.handle(RescueServer(server_id=sid, admin_pass="pw"),
                       CallContext(request_id=ctx.request_id, redelivered=True))
    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("rescued", None, 1)
    assert (await _action(again, sid, ctx.request_id))[0]["finish_time"] is not None


async def test_an_action_whose_guest_the_host_lost_ends_in_error(agent):
    sid = await _server(agent)
    untouched = await _server(agent)
    ctx = await _begin(agent, sid, TaskState.REBOOTING_HARD, "reboot")
    again = await _restart(agent, guests_survive=False)

    await again.handle(RebootServer(server_id=sid, hard=True),
                       CallContext(request_id=ctx.request_id, redelivered=True))

    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await _faults(again, sid)
    assert fault.startswith(f"The hard reboot of instance {sid} failed: no guest")
    action, recorded = await _action(again, sid, ctx.request_id)
    assert action["finish_time"] is not None and action["message"] == fault
    assert recorded["compute_reboot_instance"]["result"] == "Error"
    assert (await _row(again, untouched))["vm_state"] == "active"
    async with again.worker.pool.acquire() as conn:
        assert await hosts.claim_of(conn, sid) is not None  # the server still lives here


async def test_an_action_whose_database_is_away_is_left_for_a_retry(agent, db_url):
    """A transient failure goes up to the RPC layer (which retries the message): the
    task stays as it was, never ERROR, and the next try finishes it."""
    sid = await _server(agent)
    ctx = await _begin(agent, sid, TaskState.POWERING_OFF, "stop")
    broken = ComputeAgent(agent.settings, agent.worker, agent.driver)
    good_pool = agent.worker.pool
    agent.worker.pool = await _unreachable_pool()
    try:
        with pytest.raises(DatabaseUnavailable):
            await broken.handle(StopServer(server_id=sid), ctx)
    finally:
        await agent.worker.pool.close()
        agent.worker.pool = good_pool
    assert (await _row(agent, sid))["task_state"] == "powering-off"
    await agent.handle(StopServer(server_id=sid), CallContext(request_id=ctx.request_id,
                                                              redelivered=True))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("stopped", None, 4)


async def _unreachable_pool():
    """A pool on a port nothing listens on: every acquire fails like a database that is down."""
    from deploy.local.infra import free_ports
    from shared.db.pool import create_pool
    port = free_ports(1)[0]
    return await create_pool(DatabaseSettings(url=f"postgresql://x:y@127.0.0.1:{port}/z",
                                              pool_min=0, connect_timeout_s=1,
                                              acquire_timeout_s=1))
