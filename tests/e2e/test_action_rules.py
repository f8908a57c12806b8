"""The state rules of server actions (issue 4, items 8 and 9), end to end:

* an action the server's state does not allow is 409 conflictingRequest, in JSON
  and XML, and changes nothing (not even the instance action log);
* two actions racing on one server cannot both start;
* an agent killed in the middle of an action leaves the server in ERROR with a
  fault naming the action (or recovered), never in its task state;
* delete works from every state and frees everything.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.e2e.acting import (
    act,
    active_server,
    delete_and_wait,
    fault,
    host_of,
    settled,
    state,
    watch,
)
from tests.e2e.client import Api, eventually
from tests.e2e.projects import new_project

RUNNING, SHUTDOWN = 1, 4
TRANSIENT_TASKS = {"rebooting", "rebooting_hard", "powering-off", "powering-on", "rescuing",
                   "unrescuing"}

REBOOT_SOFT = {"reboot": {"type": "SOFT"}}
REBOOT_HARD = {"reboot": {"type": "HARD"}}
STOP, START = {"os-stop": None}, {"os-start": None}
RESCUE, UNRESCUE = {"rescue": {"adminPass": "pw-rules"}}, {"unrescue": None}

# The same bodies in XML (section 4.4.1.17, 4.4.14, 4.4.25).
XML_OF = {
    str(REBOOT_SOFT): b'<reboot type="SOFT"/>',
    str(REBOOT_HARD): b'<reboot xmlns="http://docs.openstack.org/compute/api/v2" type="HARD"/>',
    str(STOP): b'<os-stop xmlns="http://docs.openstack.org/compute/api/v2"/>',
    str(START): b'<?xml version="1.0" ?><os-start/>',
    str(RESCUE): b'<rescue xmlns="http://docs.openstack.org/compute/api/v2" adminPass="pw-rules"/>',
    str(UNRESCUE): b"<unrescue/>",
    str({"os-getConsoleOutput": {}}): b"<os-getConsoleOutput/>",
}


async def _both(api: Api, sid: str, body: dict[str, Any]) -> list:
    """The responses to ``body`` in JSON, then in XML."""
    return [await act(api, sid, body), await act(api, sid, XML_OF[str(body)], xml=True)]


@pytest.fixture(scope="module")
async def user(cloud) -> Api:
    """A project of this module's own, without a RAM quota (the no-valid-host case
    boots a flavor bigger than any host)."""
    api, _ = await new_project(cloud, maxTotalRAMSize=-1)
    return api


async def _actions(api: Api, sid: str) -> list[str]:
    r = await api.get(f"/servers/{sid}/os-instance-actions")
    assert r.status == 200, r.raw
    return [a["request_id"] for a in r.json["instanceActions"]]


async def _refused(api: Api, sid: str, body: dict[str, Any]) -> None:
    """``body`` is 409 in JSON and in XML, and the server and its action log stay as they were."""
    before, log = state(await api.server(sid)), await _actions(api, sid)
    for r in await _both(api, sid, body):
        message = fault(r, "conflictingRequest", 409)
        assert message.startswith("Cannot '") and sid in message, message
    assert state(await api.server(sid)) == before
    assert await _actions(api, sid) == log


# ---- refused transitions --------------------------------------------------------

async def test_actions_not_allowed_while_active(user):
    sid = await active_server(user, "rules-active")
    try:
        for body in (START, UNRESCUE):
            await _refused(user, sid, body)
    finally:
        await delete_and_wait(user, sid)


async def test_actions_not_allowed_while_shutoff(user):
    sid = await active_server(user, "rules-shutoff")
    try:
        assert (await act(user, sid, STOP)).status == 202
        await watch(user, sid, settled("SHUTOFF"))
        for body in (STOP, REBOOT_SOFT, UNRESCUE):
            await _refused(user, sid, body)
        r = await act(user, sid, REBOOT_SOFT)
        assert "while it is in vm_state stopped" in fault(r, "conflictingRequest", 409)
    finally:
        await delete_and_wait(user, sid)


async def test_actions_not_allowed_while_rescued(user):
    sid = await active_server(user, "rules-rescued")
    try:
        assert (await act(user, sid, RESCUE)).status == 200
        await watch(user, sid, settled("RESCUE"))
        for body in (RESCUE, REBOOT_SOFT, REBOOT_HARD, STOP, START):
            await _refused(user, sid, body)
    finally:
        await delete_and_wait(user, sid)


async def test_actions_not_allowed_while_building(user):
    r = await user.boot(name="rules-building")
    sid = r.json["server"]["id"]
    try:
        # The build takes the fake spawn delay at least: every action meets BUILD.
        for body in (REBOOT_SOFT, REBOOT_HARD, STOP, START, RESCUE, UNRESCUE):
            for r in await _both(user, sid, body):
                message = fault(r, "conflictingRequest", 409)
                assert "while it is in" in message and sid in message, message
        assert (await user.server(sid))["status"].startswith("BUILD")
        await watch(user, sid, settled("ACTIVE"))
        assert len(await _actions(user, sid)) == 1  # only the create
    finally:
        await delete_and_wait(user, sid)


async def test_an_action_while_another_runs_is_409(user):
    sid = await active_server(user, "rules-busy")
    try:
        assert (await act(user, sid, REBOOT_HARD)).status == 202
        # While the agent reboots it (0.4 s), nothing else starts, a second reboot neither.
        for body in (REBOOT_HARD, REBOOT_SOFT, STOP, RESCUE):
            for r in await _both(user, sid, body):
                assert "while it is in task_state rebooting_hard" in \
                    fault(r, "conflictingRequest", 409)
        _, seen = await watch(user, sid, settled("ACTIVE"))
        assert seen[0] == ("HARD_REBOOT", "rebooting_hard", RUNNING)
        assert len(await _actions(user, sid)) == 2  # create and the one reboot
    finally:
        await delete_and_wait(user, sid)


async def test_anything_while_deleting_is_409(cloud, user):
    sid = await active_server(user, "rules-deleting")
    # The agent holds the server while it reboots it (0.4 s); the delete waits behind
    # it, the server in task "deleting", where every action is refused.
    r = await act(user, sid, REBOOT_HARD)
    assert r.status == 202, r.raw
    await _started(cloud, sid, r.headers["X-Compute-Request-Id"], "compute_reboot_instance")
    assert (await user.delete(f"/servers/{sid}")).status == 204
    for body in (REBOOT_HARD, STOP, RESCUE, {"os-getConsoleOutput": {}}):
        for r in await _both(user, sid, body):
            fault(r, "conflictingRequest", 409)
    await user.wait_status(sid, lambda s: s is None)
    await eventually(lambda: _freed(cloud, sid))


# ---- races -------------------------------------------------------------------------

async def test_ten_concurrent_reboots_start_exactly_one(user):
    sid = await active_server(user, "rules-race")
    try:
        rs = await asyncio.gather(*(act(user, sid, REBOOT_HARD if i % 2 else REBOOT_SOFT)
                                    for i in range(10)))
        statuses = sorted(r.status for r in rs)
        assert statuses == [202] + [409] * 9, statuses
        _, seen = await watch(user, sid, settled("ACTIVE"))
        assert seen[0][0] in ("REBOOT", "HARD_REBOOT")
        assert len(await _actions(user, sid)) == 2
    finally:
        await delete_and_wait(user, sid)


async def test_different_actions_racing_start_exactly_one(user):
    sid = await active_server(user, "rules-mixed-race")
    try:
        bodies = [STOP, REBOOT_SOFT, RESCUE, REBOOT_HARD, STOP, RESCUE]
        rs = await asyncio.gather(*(act(user, sid, b) for b in bodies))
        winners = [b for b, r in zip(bodies, rs) if r.status in (200, 202)]
        assert len(winners) == 1 and all(r.status in (200, 202, 409) for r in rs)
        (won,) = winners
        expected = {"os-stop": "SHUTOFF", "reboot": "ACTIVE", "rescue": "RESCUE"}[next(iter(won))]
        await watch(user, sid, settled(expected))
    finally:
        await delete_and_wait(user, sid)


# ---- agents dying mid-action ---------------------------------------------------------

async def _event_open(cloud, sid: str, rid: str, event: str) -> bool | None:
    """True while the agent has started ``event`` and not finished it; False once finished;
    None before it started."""
    conn = await cloud.db()
    try:
        row = await conn.fetchrow(
            """SELECT e.finish_time FROM instance_action_events e
                 JOIN instance_actions a ON a.id = e.action_id
                WHERE a.server_id = $1::uuid AND a.request_id = $2 AND e.event = $3""",
            sid, rid, event)
    finally:
        await conn.close()
    return None if row is None else row["finish_time"] is None


async def _started(cloud, sid: str, rid: str, event: str) -> bool:
    """Wait until the agent started ``event``; True if it is still running."""
    async def started():
        return await _event_open(cloud, sid, rid, event) is not None
    await eventually(started, timeout=10, interval=0.01)
    return bool(await _event_open(cloud, sid, rid, event))


async def _freeze_mid_reboot(cloud, api: Api, sid: str, agent: str) -> str:
    """HARD-reboot ``sid`` and freeze its agent (SIGSTOP) while the driver reboots the
    guest: the reboot event has started and (as the frozen agent can write nothing)
    will not finish. Tries again if the reboot slipped through first."""
    for _ in range(5):
        r = await act(api, sid, REBOOT_HARD)
        assert r.status == 202, r.raw
        rid = r.headers["X-Compute-Request-Id"]
        await _started(cloud, sid, rid, "compute_reboot_instance")
        await asyncio.to_thread(cloud.stack.kill, agent, signal.SIGSTOP)
        if await _event_open(cloud, sid, rid, "compute_reboot_instance"):
            return rid
        await asyncio.to_thread(cloud.stack.kill, agent, signal.SIGCONT)
        await watch(api, sid, settled("ACTIVE"))
    raise AssertionError("never caught the agent in the middle of a reboot")


async def _action_of(api: Api, sid: str, rid: str) -> dict:
    r = await api.get(f"/servers/{sid}/os-instance-actions/{rid}")
    assert r.status == 200, r.raw
    return r.json["instanceAction"]


async def _freed(cloud, sid: str) -> bool:
    conn = await cloud.db()
    try:
        claims = await conn.fetchval("SELECT count(*) FROM host_claims WHERE server_id = $1::uuid",
                                     sid)
        ports = await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid", sid)
        vm_state = await conn.fetchval("SELECT vm_state FROM servers WHERE id = $1::uuid", sid)
    finally:
        await conn.close()
    return claims == 0 and ports == 0 and vm_state == "deleted"


async def _ports(cloud, sid: str) -> int:
    conn = await cloud.db()
    try:
        return await conn.fetchval("SELECT count(*) FROM ports WHERE server_id = $1::uuid", sid)
    finally:
        await conn.close()


async def test_agent_killed_mid_reboot_and_restarted_leaves_no_server_stuck(cloud, user):
    sid = await active_server(user, "killed-then-back", availability_zone="az2")
    agent = await host_of(cloud, sid)
    try:
        rid = await _freeze_mid_reboot(cloud, user, sid, agent)
        await asyncio.to_thread(cloud.stack.kill, agent)  # SIGKILL: the crash
        await asyncio.to_thread(cloud.stack.restart, agent)
        # The broker delivers the unacked reboot again to the restarted agent, whose
        # hypervisor kept the guest (as a real one does): the reboot ends, ACTIVE.
        server, seen = await watch(user, sid, lambda s: s["OS-EXT-STS:task_state"] is None,
                                   timeout=30)
        assert all(t in (None, "rebooting_hard") for _, t, _ in seen), seen
        assert server["status"] == "ACTIVE", server
        action = await _action_of(user, sid, rid)
        assert action["message"] is None
        assert [(e["event"], e["result"]) for e in action["events"]] == [
            ("compute_reboot_instance", "Success")]
    finally:
        await asyncio.to_thread(cloud.stack.kill, agent, signal.SIGCONT)
        if not await asyncio.to_thread(cloud.stack.healthy, agent):
            await asyncio.to_thread(cloud.stack.restart, agent)
    await delete_and_wait(user, sid)
    await eventually(lambda: _freed(cloud, sid))


async def test_agent_that_dies_mid_reboot_fails_it_and_is_refused_meanwhile(cloud, user):
    sid = await active_server(user, "killed-for-good", availability_zone="az2")
    agent = await host_of(cloud, sid)
    try:
        rid = await _freeze_mid_reboot(cloud, user, sid, agent)
        await asyncio.to_thread(cloud.stack.kill, agent)
        # The scheduler's sweep sees the host stop heartbeating: ERROR, naming the action.
        server, seen = await watch(user, sid, lambda s: s["OS-EXT-STS:task_state"] is None,
                                   timeout=30)
        assert server["status"] == "ERROR", server
        assert server["fault"]["message"] == (
            f"The hard reboot of instance {sid} did not finish: compute host {agent} stopped "
            "responding (no heartbeat for 4 s).")
        assert (await _action_of(user, sid, rid))["message"] == server["fault"]["message"]
        # Its console cannot be read, and no action can be handed to it: 503 at once,
        # nothing changed (HARD reboot is allowed from ERROR, but the host is down).
        for xml in (False, True):
            r = await act(user, sid, {"os-getConsoleOutput": {}}, xml=xml)
            assert "not responding" in fault(r, "serviceUnavailable", 503)
            r = await act(user, sid, REBOOT_HARD, xml=xml)
            assert "not responding" in fault(r, "serviceUnavailable", 503)
        assert state(await user.server(sid)) == ("ERROR", None, RUNNING)
        # Delete does not wait for the dead host; its fixed address stays held (its
        # guest may still run there with it) until the host is back and reaps it.
        await delete_and_wait(user, sid)
        assert not await _freed(cloud, sid)
        assert await _ports(cloud, sid) == 1
    finally:
        await asyncio.to_thread(cloud.stack.kill, agent, signal.SIGCONT)
        await asyncio.to_thread(cloud.stack.restart, agent)
    await eventually(lambda: _freed(cloud, sid))


async def test_hard_reboot_brings_back_an_errored_server_whose_guest_lives(cloud, user):
    sid = await active_server(user, "errored")
    try:
        conn = await cloud.db()  # as a failed action leaves it, its guest still running
        try:
            await conn.execute("UPDATE servers SET vm_state = 'error' WHERE id = $1::uuid", sid)
        finally:
            await conn.close()
        await _refused(user, sid, REBOOT_SOFT)
        r = await act(user, sid, REBOOT_HARD)
        assert r.status == 202, r.raw
        _, seen = await watch(user, sid, settled("ACTIVE"))
        assert seen[0] == ("HARD_REBOOT", "rebooting_hard", RUNNING)
    finally:
        await delete_and_wait(user, sid)


# ---- delete from every state ---------------------------------------------------------

async def _in_state(cloud, api: Api, kind: str) -> tuple[str, str]:
    """A server in the state ``kind`` (as far as the API shows it) and that status."""
    if kind == "BUILD":
        r = await api.boot(name="del-build")
        return r.json["server"]["id"], "BUILD"
    if kind == "ERROR (no host)":
        r = await api.boot(name="del-error", flavor="114")  # 120 GiB: no host fits
        sid = r.json["server"]["id"]
        await api.wait_status(sid, lambda s: s["status"] == "ERROR")
        return sid, "ERROR"
    sid = await active_server(api, f"del-{kind.lower()}")
    if kind == "ACTIVE":
        return sid, "ACTIVE"
    if kind in ("SHUTOFF", "powering-on"):
        assert (await act(api, sid, STOP)).status == 202
        await watch(api, sid, settled("SHUTOFF"))
        if kind == "SHUTOFF":
            return sid, "SHUTOFF"
        assert (await act(api, sid, START)).status == 202
        return sid, "SHUTOFF"
    if kind in ("RESCUE", "unrescuing"):
        assert (await act(api, sid, RESCUE)).status == 200
        await watch(api, sid, settled("RESCUE"))
        if kind == "RESCUE":
            return sid, "RESCUE"
        assert (await act(api, sid, UNRESCUE)).status == 200
        return sid, "RESCUE"
    body = {"REBOOT": REBOOT_SOFT, "HARD_REBOOT": REBOOT_HARD, "powering-off": STOP,
            "rescuing": RESCUE}[kind]
    assert (await act(api, sid, body)).status in (200, 202)
    return sid, {"powering-off": "ACTIVE", "rescuing": "ACTIVE"}.get(kind, kind)


@pytest.mark.parametrize("kind", ["BUILD", "ACTIVE", "REBOOT", "HARD_REBOOT", "SHUTOFF",
                                  "powering-off", "powering-on", "RESCUE", "rescuing",
                                  "unrescuing", "ERROR (no host)"])
async def test_delete_from_every_state_frees_everything(cloud, user, kind):
    sid, status = await _in_state(cloud, user, kind)
    shown = (await user.server(sid))["status"]
    assert shown == status or (status == "BUILD" and shown.startswith("BUILD")), (kind, shown)
    r = await user.delete(f"/servers/{sid}")
    assert r.status == 204, r.raw
    await user.wait_status(sid, lambda s: s is None, timeout=20)
    await eventually(lambda: _freed(cloud, sid))
