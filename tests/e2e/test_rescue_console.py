"""Rescue and unrescue, and the console output, over HTTP in JSON and XML; and the
same through openstacksdk (what `openstack server rescue/unrescue` and
`openstack console log show` send)."""

from __future__ import annotations

import asyncio
import time

import openstack
import pytest

from services.api.catalog import CIRROS_IMAGE_ID
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
from tests.e2e.client import NS, Api, eventually
from tests.e2e.projects import new_project

RUNNING, SHUTDOWN = 1, 4
XMLNS = b'xmlns="http://docs.openstack.org/compute/api/v2"'


@pytest.fixture(scope="module")
async def account(cloud) -> tuple[Api, str]:
    """A project of this module's own (its own quota and rate limits), and its name."""
    return await new_project(cloud)


@pytest.fixture(scope="module")
async def user(account) -> Api:
    return account[0]


@pytest.fixture
async def server(user) -> str:
    sid = await active_server(user, "rescuable")
    yield sid
    await delete_and_wait(user, sid)


async def _events(api: Api, sid: str, rid: str) -> dict[str, dict]:
    async def finished():
        r = await api.get(f"/servers/{sid}/os-instance-actions/{rid}")
        action = r.json["instanceAction"]
        events = {e["event"]: e for e in action["events"]}
        return events if events and all(e["finish_time"] for e in events.values()) else None
    return await eventually(finished)


# ---- rescue and unrescue ------------------------------------------------------

async def test_rescue_with_a_password_then_unrescue(user, server):
    before = await console(user, server)
    r = await act(user, server, {"rescue": {"adminPass": "MySecretPass"}})
    assert r.status == 200, r.raw
    assert r.json == {"adminPass": "MySecretPass"}
    rescue_rid = r.headers["X-Compute-Request-Id"]

    final, seen = await watch(user, server, settled("RESCUE"))
    # Nova's status map shows the vm_state while rescuing: ACTIVE, task rescuing.
    assert seen == [("ACTIVE", "rescuing", RUNNING), ("RESCUE", None, RUNNING)], seen
    assert final["OS-EXT-STS:vm_state"] == "rescued"
    rescued = (await console(user, server))[len(before):]
    assert "rescue: booting" in rescued and "own disk attached as the second disk" in rescued
    assert boots(rescued) == 1 and "MySecretPass" not in rescued
    events = await _events(user, server, rescue_rid)
    assert events["compute_rescue_instance"]["result"] == "Success"

    r = await act(user, server, {"unrescue": None})
    # Section 4.4.14.2: "Normal Response Code(s): 200" (Nova answered 202).
    assert r.status == 200 and r.raw == b"", r.raw
    unrescue_rid = r.headers["X-Compute-Request-Id"]
    final, seen = await watch(user, server, settled("ACTIVE"))
    assert seen == [("RESCUE", "unrescuing", RUNNING), ("ACTIVE", None, RUNNING)], seen
    after = await console(user, server)
    assert "booting from the guest's own disk" in after and boots(after) == 3
    events = await _events(user, server, unrescue_rid)
    assert events["compute_unrescue_instance"]["result"] == "Success"

    r = await user.get(f"/servers/{server}/os-instance-actions")
    assert [a["action"] for a in r.json["instanceActions"]][:2] == ["unrescue", "rescue"]


async def test_rescue_in_xml_generates_a_password(user, server):
    r = await act(user, server, b'<?xml version="1.0" encoding="UTF-8"?>\n<rescue ' + XMLNS + b"/>",
                  xml=True)
    assert r.status == 200, r.raw
    assert r.xml.tag == f"{{{NS}}}adminPass"
    password = r.xml.text
    assert len(password) == 12 and password.isalnum()
    await watch(user, server, settled("RESCUE"))

    r = await act(user, server, b'<?xml version="1.0" encoding="UTF-8"?>\n<unrescue ' + XMLNS
                  + b"/>", xml=True)
    assert r.status == 200 and r.raw == b"", r.raw
    await watch(user, server, settled("ACTIVE"))


async def test_rescue_password_in_xml_and_empty_json_bodies(user, server):
    r = await act(user, server, b"<rescue " + XMLNS + b' adminPass="FromXml1"/>', xml=True)
    assert r.status == 200 and r.xml.text == "FromXml1", r.raw
    await watch(user, server, settled("RESCUE"))
    assert (await act(user, server, {"unrescue": None})).status == 200
    await watch(user, server, settled("ACTIVE"))

    for body in ({"rescue": {}}, {"rescue": None}):
        r = await act(user, server, body)
        assert r.status == 200 and len(r.json["adminPass"]) == 12, r.raw
        await watch(user, server, settled("RESCUE"))
        assert (await act(user, server, {"unrescue": None})).status == 200
        await watch(user, server, settled("ACTIVE"))


async def test_rescue_a_stopped_server_then_unrescue_ends_active(user, server):
    assert (await act(user, server, {"os-stop": None})).status == 202
    await watch(user, server, settled("SHUTOFF"))
    r = await act(user, server, {"rescue": {"adminPass": "pw-stopped"}})
    assert r.status == 200, r.raw
    _, seen = await watch(user, server, settled("RESCUE"))
    assert seen == [("SHUTOFF", "rescuing", SHUTDOWN), ("RESCUE", None, RUNNING)], seen
    assert (await act(user, server, {"unrescue": None})).status == 200
    final, _ = await watch(user, server, settled("ACTIVE"))
    assert final["OS-EXT-STS:power_state"] == RUNNING


@pytest.mark.parametrize("body", [{"rescue": {"adminPass": ""}}, {"rescue": {"adminPass": 5}},
                                  {"rescue": "pw"}, b'<rescue adminPass=""/>'])
async def test_bad_rescue_body_is_400(user, server, body):
    r = await act(user, server, body, xml=isinstance(body, bytes))
    fault(r, "badRequest", 400)
    assert (await user.server(server))["status"] == "ACTIVE"


# ---- console output -----------------------------------------------------------

async def test_console_output_whole_and_tail(user, server):
    whole = await console(user, server)
    lines = whole.splitlines(keepends=True)
    assert "Booting the kernel." in whole and whole.endswith("rescuable login:\n")
    assert len(lines) >= 4
    # Nova's cut: the last N pieces of the log split on newlines. The log ends in
    # a newline, so its last piece is empty and N gives N-1 lines.
    assert await console(user, server, length=3) == "".join(lines[-2:])
    assert await console(user, server, length=2) == lines[-1]
    assert await console(user, server, length=1) == ""
    assert await console(user, server, length=len(lines) + 1) == whole
    assert await console(user, server, length=len(lines)) == "".join(lines[1:])
    assert await console(user, server, length=0) == ""
    # novaclient sends an explicit null for "all of it"; -1 is Nova's "unlimited".
    for length in (None, -1, "-1"):
        r = await act(user, server, {"os-getConsoleOutput": {"length": length}})
        assert r.status == 200 and r.json == {"output": whole}, length
    # A string of digits is a number (as XML sends it).
    r = await act(user, server, {"os-getConsoleOutput": {"length": "2"}})
    assert r.json["output"] == lines[-1]


async def test_console_output_in_xml(user, server):
    whole = await console(user, server)
    lines = whole.splitlines(keepends=True)
    r = await act(user, server, b'<?xml version="1.0" ?>\n<os-getConsoleOutput>\n    <length>\n'
                                b"        3\n    </length>\n</os-getConsoleOutput>", xml=True)
    assert r.status == 200, r.raw
    assert r.xml.tag == f"{{{NS}}}output"
    assert r.xml.text == "".join(lines[-2:])
    r = await act(user, server, b"<os-getConsoleOutput/>", xml=True)
    assert r.status == 200 and r.xml.text == whole
    r = await act(user, server, b"<os-getConsoleOutput><length>-1</length></os-getConsoleOutput>",
                  xml=True)
    assert r.status == 200 and r.xml.text == whole


async def test_console_shows_every_boot_the_server_went_through(user, server):
    assert boots(await console(user, server)) == 1
    assert (await act(user, server, {"reboot": {"type": "SOFT"}})).status == 202
    # The log can be read while the guest reboots: the shutdown shows before the boot.
    async def going_down():
        text = await console(user, server)
        return text if "reboot: Restarting system" in text or boots(text) == 2 else None
    await eventually(going_down, interval=0.1)
    await watch(user, server, settled("ACTIVE"))
    text = await console(user, server)
    assert boots(text) == 2
    assert text.index("reboot: Restarting system") < text.rindex("Booting the kernel.")
    assert (await act(user, server, {"os-stop": None})).status == 202
    await watch(user, server, settled("SHUTOFF"))
    assert (await act(user, server, {"os-start": None})).status == 202
    await watch(user, server, settled("ACTIVE"))
    # The last pieces are a boot: its kernel line, the NIC's address, the login
    # prompt and the empty piece after the log's last newline.
    assert boots(await console(user, server, length=4)) == 1
    assert boots(await console(user, server)) == 3


@pytest.mark.parametrize("body", [
    {"os-getConsoleOutput": {"length": -2}},
    {"os-getConsoleOutput": {"length": "ten"}},
    {"os-getConsoleOutput": {"length": 2.5}},
    {"os-getConsoleOutput": {"length": True}},
    {"os-getConsoleOutput": "50"},
    b"<os-getConsoleOutput><length>-5</length></os-getConsoleOutput>",
    b"<os-getConsoleOutput><length>many</length></os-getConsoleOutput>",
])
async def test_bad_console_length_is_400(user, server, body):
    xml = isinstance(body, bytes)
    message = fault(await act(user, server, body, xml=xml), "badRequest", 400)
    assert "os-getConsoleOutput" in message or "Length" in message


async def test_console_of_a_building_server_is_409(user):
    r = await user.boot(name="console-too-early")
    sid = r.json["server"]["id"]
    try:
        for xml in (False, True):
            r = await act(user, sid, {"os-getConsoleOutput": {"length": 5}}, xml=xml)
            assert "not ready" in fault(r, "conflictingRequest", 409)
        assert (await user.server(sid))["status"].startswith("BUILD")
    finally:
        await delete_and_wait(user, sid)


async def test_console_and_rescue_of_another_projects_server_are_404(user, alt, server):
    for body in ({"os-getConsoleOutput": {}}, {"rescue": None}, {"unrescue": None}):
        fault(await act(alt, server, body), "itemNotFound", 404)
    assert (await user.server(server))["status"] == "ACTIVE"


# ---- openstacksdk -------------------------------------------------------------

def _sdk_rescue_cycle(identity_url: str, project: str, sid: str) -> dict:
    conn = openstack.connect(
        auth_url=f"{identity_url}/v3", username=project, password="pw", project_name=project,
        user_domain_id="default", project_domain_id="default", region_name="region-a",
        compute_api_version="2")

    def settle(status: str) -> None:
        for _ in range(300):
            server = conn.compute.get_server(sid)
            if server.status == status and server.task_state is None:
                return
            time.sleep(0.1)
        raise AssertionError(f"{sid} never settled in {status}")

    out = {}
    conn.compute.rescue_server(sid, admin_pass="SdkPass1")
    settle("RESCUE")
    out["rescued"] = conn.compute.get_server(sid).vm_state
    conn.compute.unrescue_server(sid)
    settle("ACTIVE")
    out["all"] = conn.compute.get_server_console_output(sid)["output"]
    out["tail"] = conn.compute.get_server_console_output(sid, length=2)["output"]
    return out


async def test_openstacksdk_rescues_unrescues_and_reads_the_console(cloud, account, server):
    user, name = account
    out = await asyncio.to_thread(_sdk_rescue_cycle, cloud.identity_url, name, server)
    assert out["rescued"] == "rescued"
    assert boots(out["all"]) == 3 and "rescue: booting" in out["all"]
    # length=2: the last line and the empty piece after its newline (Nova's cut).
    assert out["all"].endswith(out["tail"]) and out["tail"].count("\n") == 1


async def test_rescue_image_is_the_servers_own(user, server):
    assert (await user.server(server))["image"]["id"] == str(CIRROS_IMAGE_ID)
    r = await user.get(f"/images/{CIRROS_IMAGE_ID}")
    image_name = r.json["image"]["name"]
    assert (await act(user, server, {"rescue": None})).status == 200
    await watch(user, server, settled("RESCUE"))
    assert f"rescue: booting {image_name}," in await console(user, server)
    assert (await act(user, server, {"unrescue": None})).status == 200
    await watch(user, server, settled("ACTIVE"))
