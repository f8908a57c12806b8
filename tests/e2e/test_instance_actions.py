"""Instance actions (section 4.4.20): the log of what was asked of a server and
what each service did about it, in JSON and XML, for its project only."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from tests.e2e.client import NS, Api, eventually

ACTION_KEYS = {"action", "instance_uuid", "message", "project_id", "request_id", "start_time",
               "user_id"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")  # 2013-05-10T12:41:56.000000


@pytest.fixture(scope="module")
async def admin(cloud) -> Api:
    return await cloud.login("admin", "admin", "admin")


async def _events_done(api: Api, sid: str, rid: str, names: set[str]) -> dict:
    """The action once every event in ``names`` has finished."""
    async def done():
        r = await api.get(f"/servers/{sid}/os-instance-actions/{rid}")
        assert r.status == 200, r.raw
        events = {e["event"]: e for e in r.json["instanceAction"]["events"]}
        finished = names <= set(events) and all(events[n]["finish_time"] for n in names)
        return r.json["instanceAction"] if finished else None
    return await eventually(done)


async def test_boot_then_delete_lists_both_actions_with_their_events(demo, alt):
    r = await demo.boot(name="actions")
    assert r.status == 202, r.raw
    sid, create_rid = r.json["server"]["id"], r.headers["X-Compute-Request-Id"]
    server, _ = await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")

    action = await _events_done(demo, sid, create_rid,
                                {"schedule_instance", "compute_build_and_run_instance"})
    assert set(action) == ACTION_KEYS | {"events"}
    assert (action["action"], action["instance_uuid"], action["request_id"]) == (
        "create", sid, create_rid)
    assert (action["project_id"], action["user_id"]) == (demo.project_id, server["user_id"])
    assert action["message"] is None and TIME.match(action["start_time"])
    events = {e["event"]: e for e in action["events"]}
    for name in ("schedule_instance", "compute_build_and_run_instance"):
        event = events[name]
        # No traceback for a member, and never the host (not in Nova's event view).
        assert set(event) == {"event", "start_time", "finish_time", "result"}, event
        assert event["result"] == "Success"
        assert TIME.match(event["start_time"]) and TIME.match(event["finish_time"])
        assert event["start_time"] <= event["finish_time"]
    assert events["schedule_instance"]["start_time"] <= \
        events["compute_build_and_run_instance"]["start_time"]

    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    delete_rid = r.headers["X-Compute-Request-Id"]
    await demo.wait_status(sid, lambda s: s is None)

    # The server is gone; its log stays readable by its project, newest first.
    r = await demo.get(f"/servers/{sid}/os-instance-actions")
    assert r.status == 200, r.raw
    listed = r.json["instanceActions"]
    assert [(a["action"], a["request_id"]) for a in listed] == [
        ("delete", delete_rid), ("create", create_rid)]
    assert all(set(a) == ACTION_KEYS for a in listed)  # no events in the list
    assert listed[0]["start_time"] >= listed[1]["start_time"]

    deleted = await _events_done(demo, sid, delete_rid, {"compute_terminate_instance"})
    assert deleted["action"] == "delete"
    [terminate] = deleted["events"]
    assert (terminate["event"], terminate["result"]) == ("compute_terminate_instance", "Success")

    # Another project sees none of it, not even that the server existed.
    for path in (f"/servers/{sid}/os-instance-actions",
                 f"/servers/{sid}/os-instance-actions/{create_rid}"):
        r = await alt.get(path)
        assert r.status == 404 and "itemNotFound" in r.json, (path, r.raw)


async def test_actions_in_xml(demo):
    r = await demo.boot(name="actions-xml")
    sid, rid = r.json["server"]["id"], r.headers["X-Compute-Request-Id"]
    await demo.wait_status(sid, lambda s: s and s["status"] == "ACTIVE")
    try:
        await _events_done(demo, sid, rid, {"schedule_instance", "compute_build_and_run_instance"})
        r = await demo.get(f"/servers/{sid}/os-instance-actions.xml")
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/xml")
        root = r.xml
        assert root.tag == f"{{{NS}}}instanceActions"
        [item] = root
        assert item.tag == f"{{{NS}}}instanceAction"
        assert set(item.attrib) == ACTION_KEYS
        assert (item.get("action"), item.get("instance_uuid"), item.get("request_id")) == (
            "create", sid, rid)
        assert item.get("message") == ""  # JSON null, written "" as the spec's example shows
        assert TIME.match(item.get("start_time"))

        r = await demo.get(f"/servers/{sid}/os-instance-actions/{rid}", xml=True)
        assert r.status == 200, r.raw
        action = r.xml
        assert action.tag == f"{{{NS}}}instanceAction" and action.get("request_id") == rid
        assert action.get("message") == ""
        events = action.find(f"{{{NS}}}events")
        by_name = {e.get("event"): e for e in events.findall(f"{{{NS}}}event")}
        assert set(by_name) == {"schedule_instance", "compute_build_and_run_instance"}
        assert {e.get("result") for e in by_name.values()} == {"Success"}
        assert all("traceback" not in e.attrib and "host" not in e.attrib
                   for e in by_name.values())

        r = await demo.get(f"/servers/{sid}/os-instance-actions/req-nope.xml")
        assert r.status == 404
        assert etree.QName(r.xml).localname == "itemNotFound"
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, lambda s: s is None)


async def test_no_valid_host_shows_schedule_instance_error(demo, admin, cloud):
    # A zone the API knows (it has a host row) whose only host is long dead:
    # the build passes the API's checks and finds no host in the scheduler.
    conn = await cloud.db()
    await conn.execute(
        """INSERT INTO compute_hosts (host, availability_zone, total_ram_mb, total_disk_gb,
                                      total_vcpus, last_heartbeat)
           VALUES ('e2e-ghost', 'az-ghost', 65536, 2000, 32, now() - interval '1 hour')""")
    try:
        for api in (demo, admin):
            r = await api.boot(name="no-host-actions", availability_zone="az-ghost")
            assert r.status == 202, r.raw
            sid, rid = r.json["server"]["id"], r.headers["X-Compute-Request-Id"]
            server, _ = await api.wait_status(sid, lambda s: s and s["status"] == "ERROR")
            action = await _events_done(api, sid, rid, {"schedule_instance"})
            [event] = action["events"]
            assert (event["event"], event["result"]) == ("schedule_instance", "Error")
            # The action carries the reason the user sees in the server's fault.
            assert action["message"] == server["fault"]["message"]
            assert action["message"].startswith("No valid host was found.")
            if api is admin:
                assert "No valid host" in event["traceback"]
            else:
                assert "traceback" not in event
            r = await api.delete(f"/servers/{sid}")
            assert r.status == 204
            await api.wait_status(sid, lambda s: s is None)
    finally:
        await conn.execute("DELETE FROM compute_hosts WHERE host = 'e2e-ghost'")
        await conn.close()


async def test_unknown_server_or_action_is_404(demo):
    r = await demo.get("/servers/0b5a7e3c-53c4-4ab4-9a4d-6e6f1a4b7a61/os-instance-actions")
    assert r.status == 404 and "itemNotFound" in r.json
    r = await demo.get("/servers/not-a-uuid/os-instance-actions")
    assert r.status == 404
    r = await demo.boot(name="actions-404")
    sid = r.json["server"]["id"]
    try:
        r = await demo.get(f"/servers/{sid}/os-instance-actions/req-0000")
        assert r.status == 404
        assert r.json["itemNotFound"]["message"] == "Action req-0000 not found."
    finally:
        await demo.delete(f"/servers/{sid}")
        await demo.wait_status(sid, lambda s: s is None)
