"""The compute agent carrying out reboot, stop, start, rescue and unrescue, and
recovering at start from actions an earlier run left half done (real PostgreSQL).

The agent runs in-process with the fake driver. A "restart" is a new agent on the
same driver: the guests outlive the agent, as a real hypervisor's do; a new
driver stands for a host that lost its guests (the fake driver's own restart).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from services.compute_agent import recover as recover_module
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
from shared.errors import Conflict
from shared.logging import bind_request_id
from shared.states import PowerState, TaskState
from shared.worker import Worker
from tests.integration.test_compute_agent import _start_network

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
        await agent.driver.spawn(GuestSpec(server_id=sid, name="vm", flavor=FLAVOR, image=IMAGE))
    return sid


async def _begin(agent: ComputeAgent, sid, task: TaskState, action: str) -> str:
    """What the API's begin_task does: the task and an instance action; binds its request id."""
    rid = f"req-{uuid.uuid4()}"
    async with agent.worker.pool.acquire() as conn:
        await conn.execute("UPDATE servers SET task_state = $2 WHERE id = $1", sid, task.value)
        await actions.start_action(conn, server_id=sid, project_id="p-rec", user_id="u",
                                   action=action, request_id=rid)
    bind_request_id(rid)
    return rid


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
    return await agent.handle(GetConsoleOutput(server_id=sid))


# ---- the actions, one message each ------------------------------------------

@pytest.mark.parametrize("hard", [False, True])
async def test_reboot_boots_the_guest_again_and_ends_active(agent, hard):
    sid = await _server(agent)
    task = TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING
    rid = await _begin(agent, sid, task, "reboot")
    await agent.handle(RebootServer(server_id=sid, hard=hard))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert (await _console(agent, sid)).count("Booting the kernel.") == 2
    action, events = await _action(agent, sid, rid)
    assert action["finish_time"] is not None and action["message"] is None
    assert events["compute_reboot_instance"]["result"] == "Success"
    assert events["compute_reboot_instance"]["host"] == HOST


async def test_stop_then_start(agent):
    sid = await _server(agent)
    rid = await _begin(agent, sid, TaskState.POWERING_OFF, "stop")
    await agent.handle(StopServer(server_id=sid))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("stopped", None, 4)
    assert (await _action(agent, sid, rid))[1]["compute_stop_instance"]["result"] == "Success"

    rid = await _begin(agent, sid, TaskState.POWERING_ON, "start")
    await agent.handle(StartServer(server_id=sid))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert (await _action(agent, sid, rid))[1]["compute_start_instance"]["result"] == "Success"


async def test_rescue_then_unrescue(agent):
    sid = await _server(agent)
    rid = await _begin(agent, sid, TaskState.RESCUING, "rescue")
    await agent.handle(RescueServer(server_id=sid, admin_pass="pw", rescue_image=IMAGE))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("rescued", None, 1)
    assert (await agent.driver.get_info(sid)).rescued
    assert (await _action(agent, sid, rid))[1]["compute_rescue_instance"]["result"] == "Success"

    rid = await _begin(agent, sid, TaskState.UNRESCUING, "unrescue")
    await agent.handle(UnrescueServer(server_id=sid))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert not (await agent.driver.get_info(sid)).rescued
    assert (await _action(agent, sid, rid))[1]["compute_unrescue_instance"]["result"] == "Success"


async def test_a_message_delivered_twice_acts_once(agent):
    sid = await _server(agent)
    await _begin(agent, sid, TaskState.REBOOTING, "reboot")
    await agent.handle(RebootServer(server_id=sid))
    await agent.handle(RebootServer(server_id=sid))
    assert (await _console(agent, sid)).count("Booting the kernel.") == 2
    # And a message for a task the server is not in (a HARD one for a SOFT task) does nothing.
    await _begin(agent, sid, TaskState.REBOOTING, "reboot")
    await agent.handle(RebootServer(server_id=sid, hard=True))
    assert (await _row(agent, sid))["task_state"] == "rebooting"


async def test_an_action_the_driver_fails_ends_in_error_with_a_fault(agent):
    sid = await _server(agent, guest=False)  # the hypervisor has no such guest
    rid = await _begin(agent, sid, TaskState.POWERING_OFF, "stop")
    await agent.handle(StopServer(server_id=sid))
    row = await _row(agent, sid)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await _faults(agent, sid)
    assert fault.startswith(f"The stop of instance {sid} failed: no guest")
    action, events = await _action(agent, sid, rid)
    assert action["finish_time"] is not None and action["message"] == fault
    assert events["compute_stop_instance"]["result"] == "Error"


async def test_a_delete_during_an_action_waits_for_it_then_wins(agent, db_url, amqp_url):
    net, net_task = await _start_network(db_url, amqp_url)  # the delete frees the ports
    try:
        sid = await _server(agent)
        rid = await _begin(agent, sid, TaskState.REBOOTING_HARD, "reboot")
        reboot = asyncio.create_task(agent.handle(RebootServer(server_id=sid, hard=True)))
        await asyncio.sleep(0.02)  # the driver is rebooting the guest
        async with agent.worker.pool.acquire() as conn:  # the API's delete
            await conn.execute("UPDATE servers SET task_state = 'deleting' WHERE id = $1", sid)
        bind_request_id(f"req-{uuid.uuid4()}")
        await agent.handle(DeleteServer(server_id=sid))  # queued behind the reboot's lock
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
    full = await agent.handle(GetConsoleOutput(server_id=sid))
    last2 = await agent.handle(GetConsoleOutput(server_id=sid, length=2))
    assert full.endswith(last2) and last2.count("\n") == 2 and last2.endswith("vm login:\n")


# ---- recovery at start -------------------------------------------------------

async def _restart(agent: ComputeAgent, *, guests_survive: bool = True) -> ComputeAgent:
    """A new agent process on the host (same driver: the guests outlived the agent)."""
    bind_request_id(None)
    driver = agent.driver if guests_survive else FakeDriver(FAKE, host=HOST)
    again = _agent(agent.worker, driver)
    await again.report(starting=True)
    return again


@pytest.mark.parametrize(("task", "vm_state", "power", "events"), [
    (TaskState.REBOOTING, "active", 1, "compute_reboot_instance"),
    (TaskState.REBOOTING_HARD, "active", 1, "compute_reboot_instance"),
    (TaskState.POWERING_OFF, "stopped", 4, "compute_stop_instance"),
    (TaskState.UNRESCUING, "active", 1, "compute_unrescue_instance"),
])
async def test_recovery_redoes_an_interrupted_action(agent, task, vm_state, power, events):
    sid = await _server(agent)
    if task is TaskState.UNRESCUING:
        await agent.driver.rescue(sid, admin_pass="x", image=None)
    rid = await _begin(agent, sid, task, task.value)
    again = await _restart(agent)

    assert await recover_module.recover(again) == 1

    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == (vm_state, None, power)
    action, recorded = await _action(again, sid, rid)
    assert action["finish_time"] is not None and recorded[events]["result"] == "Success"
    assert recorded[events]["host"] == HOST
    # The message, delivered again by the broker after the restart, finds nothing to do.
    bind_request_id(rid)
    boots = (await _console(again, sid)).count("Booting the kernel.")
    if task in (TaskState.REBOOTING, TaskState.REBOOTING_HARD):
        await again.handle(RebootServer(server_id=sid, hard=task is TaskState.REBOOTING_HARD))
    assert (await _console(again, sid)).count("Booting the kernel.") == boots
    assert (await _row(again, sid))["task_state"] is None


async def test_recovery_starts_a_server_whose_start_was_interrupted(agent):
    sid = await _server(agent, vm_state="stopped")
    await agent.driver.power_off(sid)
    await _begin(agent, sid, TaskState.POWERING_ON, "start")
    again = await _restart(agent)
    await recover_module.recover(again)
    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("active", None, 1)
    assert (await again.driver.get_info(sid)).power_state is PowerState.RUNNING


async def test_recovery_finishes_a_rescue_the_driver_completed(agent):
    sid = await _server(agent)
    await agent.driver.rescue(sid, admin_pass="pw", image=None)  # done, but not recorded
    rid = await _begin(agent, sid, TaskState.RESCUING, "rescue")
    again = await _restart(agent)
    await recover_module.recover(again)
    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == ("rescued", None, 1)
    assert (await _action(again, sid, rid))[0]["finish_time"] is not None


async def test_recovery_leaves_an_unstarted_rescue_to_its_message(agent):
    sid = await _server(agent)
    rid = await _begin(agent, sid, TaskState.RESCUING, "rescue")
    again = await _restart(agent)
    await recover_module.recover(again)
    assert (await _row(again, sid))["task_state"] == "rescuing"
    # The message comes again (it was never acked) and carries the password.
    bind_request_id(rid)
    await again.handle(RescueServer(server_id=sid, admin_pass="pw"))
    assert (await _row(again, sid))["vm_state"] == "rescued"


async def test_recovery_fails_an_action_whose_guest_is_gone(agent):
    sid = await _server(agent)
    untouched = await _server(agent)
    rid = await _begin(agent, sid, TaskState.REBOOTING_HARD, "reboot")
    again = await _restart(agent, guests_survive=False)

    assert await recover_module.recover(again) == 1

    row = await _row(again, sid)
    assert (row["vm_state"], row["task_state"]) == ("error", None)
    (fault,) = await _faults(again, sid)
    assert f"The hard reboot of instance {sid} did not finish" in fault
    assert f"compute agent on host {HOST} restarted" in fault
    action, recorded = await _action(again, sid, rid)
    assert action["finish_time"] is not None and action["message"] == fault
    assert recorded["compute_reboot_instance"]["result"] == "Error"
    # Servers with no task in flight are not this module's business.
    assert (await _row(again, untouched))["vm_state"] == "active"
    async with again.worker.pool.acquire() as conn:
        assert await hosts.claim_of(conn, sid) is not None  # the server still lives here


async def test_recovery_handles_several_servers_at_once(agent):
    sids = [await _server(agent) for _ in range(4)]
    for sid in sids:
        await _begin(agent, sid, TaskState.REBOOTING, "reboot")
    bind_request_id(None)
    again = await _restart(agent)
    assert await recover_module.recover(again) == 4
    for sid in sids:
        assert (await _row(again, sid))["task_state"] is None
    assert await recover_module.recover(again) == 0
