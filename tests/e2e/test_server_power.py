"""Reboot (SOFT, HARD) and stop/start over HTTP, in JSON and XML, watched state by state,
with the guest's console showing each new boot; and the same through openstacksdk,
which sends the bodies the openstack CLI does."""

from __future__ import annotations

import asyncio
import time

import openstack
import pytest

from tests.e2e.acting import (
    act,
    active_server,
    boots,
    console,
    delete_and_wait,
    fault,
    settled,
    watch,
)
from tests.e2e.client import Api, eventually
from tests.e2e.projects import new_project

RUNNING, SHUTDOWN = 1, 4


@pytest.fixture(scope="module")
async def account(cloud) -> tuple[Api, str]:
    """A project of this module's own (its own quota and rate limits), and its name."""
    return await new_project(cloud)


@pytest.fixture(scope="module")
async def user(account) -> Api:
    return account[0]


@pytest.fixture
async def server(user) -> str:
    sid = await active_server(user, "power")
    yield sid
    await delete_and_wait(user, sid)


async def _event(api: Api, sid: str, rid: str, name: str) -> dict:
    async def finished():
        r = await api.get(f"/servers/{sid}/os-instance-actions/{rid}")
        assert r.status == 200, r.raw
        events = {e["event"]: e for e in r.json["instanceAction"]["events"]}
        event = events.get(name)
        return r.json["instanceAction"] if event and event["finish_time"] else None
    action = await eventually(finished)
    return action


async def test_soft_reboot_shows_reboot_then_active_and_a_new_boot(user, server):
    before = await console(user, server)
    assert boots(before) == 1

    r = await act(user, server, {"reboot": {"type": "SOFT"}})
    assert r.status == 202 and r.raw == b"", r.raw
    rid = r.headers["X-Compute-Request-Id"]

    final, seen = await watch(user, server, settled("ACTIVE"))
    assert seen == [("REBOOT", "rebooting", RUNNING), ("ACTIVE", None, RUNNING)], seen
    assert final["OS-EXT-STS:vm_state"] == "active"

    after = await console(user, server)
    assert after.startswith(before) and boots(after) == 2
    new = after[len(before):]
    assert new.index("soft reboot") < new.index("The system is going down for reboot NOW!") \
        < new.index("reboot: Restarting system") < new.index("Booting the kernel.") \
        < new.index("login:")

    action = await _event(user, server, rid, "compute_reboot_instance")
    assert action["action"] == "reboot" and action["message"] is None
    (event,) = [e for e in action["events"] if e["event"] == "compute_reboot_instance"]
    assert event["result"] == "Success"


async def test_hard_reboot_in_xml_shows_hard_reboot_then_active(user, server):
    before = await console(user, server)
    r = await act(user, server, b'<?xml version="1.0" encoding="UTF-8"?>\n'
                                b'<reboot xmlns="http://docs.openstack.org/compute/api/v2" '
                                b'type="HARD"/>', xml=True)
    assert r.status == 202 and r.raw == b"", r.raw

    _, seen = await watch(user, server, settled("ACTIVE"))
    assert seen == [("HARD_REBOOT", "rebooting_hard", RUNNING), ("ACTIVE", None, RUNNING)], seen
    new = (await console(user, server))[len(before):]
    assert "hard reboot" in new and "going down" not in new and boots(new) == 1


async def test_reboot_type_is_case_insensitive(user, server):
    r = await act(user, server, {"reboot": {"type": "hard"}})
    assert r.status == 202, r.raw
    _, seen = await watch(user, server, settled("ACTIVE"))
    assert seen[0][0] == "HARD_REBOOT"


@pytest.mark.parametrize("xml", [False, True])
async def test_stop_then_start(user, server, xml):
    stop = b'<os-stop xmlns="http://docs.openstack.org/compute/api/v2"/>' if xml \
        else {"os-stop": None}
    start = b'<?xml version="1.0" ?>\n<os-start xmlns="http://docs.openstack.org/compute/api/v2"/>' \
        if xml else {"os-start": None}

    r = await act(user, server, stop, xml=xml)
    assert r.status == 202 and r.raw == b"", r.raw
    final, seen = await watch(user, server, settled("SHUTOFF"))
    assert seen == [("ACTIVE", "powering-off", RUNNING), ("SHUTOFF", None, SHUTDOWN)], seen
    assert final["OS-EXT-STS:vm_state"] == "stopped"
    text = await console(user, server)
    assert text.rstrip().endswith("reboot: Power down")  # the console of a stopped guest

    r = await act(user, server, start, xml=xml)
    assert r.status == 202 and r.raw == b"", r.raw
    final, seen = await watch(user, server, settled("ACTIVE"))
    assert seen == [("SHUTOFF", "powering-on", SHUTDOWN), ("ACTIVE", None, RUNNING)], seen
    assert final["OS-EXT-STS:vm_state"] == "active"
    after = await console(user, server)
    assert boots(after) == 2 and after.rstrip().endswith("login:")


async def test_hard_reboot_boots_a_stopped_server(user, server):
    assert (await act(user, server, {"os-stop": None})).status == 202
    await watch(user, server, settled("SHUTOFF"))
    r = await act(user, server, {"reboot": {"type": "HARD"}})
    assert r.status == 202, r.raw
    _, seen = await watch(user, server, settled("ACTIVE"))
    assert seen == [("HARD_REBOOT", "rebooting_hard", SHUTDOWN), ("ACTIVE", None, RUNNING)], seen


@pytest.mark.parametrize(("body", "message"), [
    ({"reboot": {}}, "Missing argument 'type' for reboot"),
    ({"reboot": None}, "Missing argument 'type' for reboot"),
    ({"reboot": {"type": "MEDIUM"}}, "Argument 'type' for reboot is not HARD or SOFT"),
    (b"<reboot/>", "Missing argument 'type' for reboot"),
    (b'<reboot type="GENTLE"/>', "Argument 'type' for reboot is not HARD or SOFT"),
])
async def test_bad_reboot_type_is_400_and_changes_nothing(user, server, body, message):
    xml = isinstance(body, bytes)
    r = await act(user, server, body, xml=xml)
    assert fault(r, "badRequest", 400) == message
    s = await user.server(server)
    assert (s["status"], s["OS-EXT-STS:task_state"]) == ("ACTIVE", None)


# ---- openstacksdk: what `openstack server reboot/stop/start` send -----------

def _sdk(identity_url: str, project: str) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=f"{identity_url}/v3", username=project, password="pw", project_name=project,
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")


def _settle(conn: openstack.connection.Connection, sid: str, status: str) -> str:
    """Wait for ``status`` with no task in flight. (The SDK's own wait_for_server returns
    at once if the object it holds already shows ``status``, as it does right after
    a reboot is asked for.)"""
    for _ in range(300):
        server = conn.compute.get_server(sid)
        if server.status == status and server.task_state is None:
            return server.status
        time.sleep(0.1)
    raise AssertionError(f"{sid} never settled in {status}")


def _sdk_power_cycle(identity_url: str, project: str, sid: str) -> list[str]:
    conn = _sdk(identity_url, project)
    seen = []
    conn.compute.reboot_server(sid, "SOFT")
    seen.append(_settle(conn, sid, "ACTIVE"))
    conn.compute.reboot_server(sid, "HARD")
    _settle(conn, sid, "ACTIVE")
    conn.compute.stop_server(sid)
    seen.append(_settle(conn, sid, "SHUTOFF"))
    conn.compute.start_server(sid)
    seen.append(_settle(conn, sid, "ACTIVE"))
    seen.append(conn.compute.get_server_console_output(sid, length=3)["output"])
    return seen


async def test_openstacksdk_reboots_stops_and_starts(cloud, account, server):
    user, name = account
    seen = await asyncio.to_thread(_sdk_power_cycle, cloud.identity_url, name, server)
    assert seen[:3] == ["ACTIVE", "SHUTOFF", "ACTIVE"]
    tail = seen[3]
    # length=3: two lines and the empty piece after the last newline (Nova's cut).
    assert tail.count("\n") == 2 and tail.endswith("login:\n")
    assert boots(await console(user, server)) == 4  # spawn, two reboots, start
