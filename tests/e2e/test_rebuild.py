"""Rebuild server (section 4.4.1.18) end to end, in JSON and XML: REBUILD then ACTIVE on
the new image, with the new name, metadata, files and password, on the same
addresses; the states it is refused in (409), its bad bodies (400/413)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID, DEBIAN_IMAGE_ID
from tests.e2e.acting import CORE_KEYS, delete_and_wait
from tests.e2e.client import NS, Api, eventually

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _active(s):
    return s is not None and s["status"] == "ACTIVE"


async def _boot(demo: Api, name: str, **extra) -> tuple[str, dict]:
    r = await demo.boot(name=name, **extra)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    server, _ = await demo.wait_status(sid, _active)
    return sid, server


async def _guest_dir(cloud, sid: str) -> Path:
    host = await cloud.fetchval("SELECT host FROM servers WHERE id = $1::uuid", sid)
    return Path(cloud.stack.env["NIMBUS_FAKE_STATE_DIR"]) / host / sid


async def _event(demo: Api, sid: str, rid: str, name: str) -> dict:
    async def done():
        r = await demo.get(f"/servers/{sid}/os-instance-actions/{rid}")
        assert r.status == 200, r.raw
        events = {e["event"]: e for e in r.json["instanceAction"]["events"]}
        event = events.get(name)
        return (r.json["instanceAction"], event) if event and event["finish_time"] else None
    return await eventually(done)


async def test_rebuild_json_moves_to_the_new_image_keeping_addresses(demo, alt, cloud):
    sid, before = await _boot(demo, "rb-json", metadata={"old": "1"},
                              personality=[{"path": "/etc/old.txt", "contents": b64(b"old")}])
    guest = await _guest_dir(cloud, sid)
    assert (guest / "files/etc/old.txt").read_bytes() == b"old"

    r = await demo.post(f"/servers/{sid}/action", json={"rebuild": {
        "imageRef": str(DEBIAN_IMAGE_ID), "name": "rb-json-2", "metadata": {"new": "2"},
        "personality": [{"path": "/etc/new.txt", "contents": b64(b"new")}]}})
    assert r.status == 202, r.raw
    assert r.headers["Location"].endswith(f"/v2/{demo.project_id}/servers/{sid}")
    server = r.json["server"]
    assert server["id"] == sid and server["status"] == "REBUILD"
    assert server["image"]["id"] == str(DEBIAN_IMAGE_ID)
    assert server["name"] == "rb-json-2" and server["metadata"] == {"new": "2"}
    assert isinstance(server["adminPass"], str) and len(server["adminPass"]) >= 8
    # What the spec's example shows, and nothing else: no extension attribute, and
    # the addresses with version and addr only (as .../ips shows them).
    assert set(server) == CORE_KEYS | {"adminPass"}
    assert server["addresses"] == (await demo.get(f"/servers/{sid}/ips")).json["addresses"]
    assert [(ip["version"], ip["addr"]) for ip in server["addresses"]["private"]] == [
        (ip["version"], ip["addr"]) for ip in before["addresses"]["private"]]
    rid = r.headers["X-Compute-Request-Id"]

    after, seen = await demo.wait_status(sid, lambda s: s["status"] != "REBUILD")
    assert seen == ["REBUILD", "ACTIVE"], seen
    assert after["image"]["id"] == str(DEBIAN_IMAGE_ID)
    assert after["name"] == "rb-json-2" and after["metadata"] == {"new": "2"}
    # Same fixed IP and MAC.
    assert after["addresses"] == before["addresses"] and after["addresses"]
    assert after["OS-EXT-STS:power_state"] == 1 and after["OS-EXT-STS:task_state"] is None
    assert after["flavor"]["id"] == before["flavor"]["id"]
    # The guest's console shows the rebuild, then a fresh boot.
    r = await demo.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}})
    assert r.status == 200, r.raw
    console = r.json["output"]
    rebuilt = console.index("rebuilding guest rb-json from image Debian")
    assert "Booting the kernel." in console[rebuilt:] and "rb-json-2 login:" in console[rebuilt:]
    # The hypervisor re-imaged the disk with the new files.
    assert (guest / "files/etc/new.txt").read_bytes() == b"new"
    assert not (guest / "files/etc/old.txt").exists()

    action, event = await _event(demo, sid, rid, "compute_rebuild_instance")
    assert action["action"] == "rebuild" and event["result"] == "Success"
    # Another project does not even see it.
    r = await alt.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": str(CIRROS_IMAGE_ID)}})
    assert r.status == 404
    await delete_and_wait(demo, sid)


async def test_rebuild_xml_takes_the_given_password(demo):
    sid, before = await _boot(demo, "rb-xml")
    body = (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<rebuild xmlns="{NS}" imageRef="{DEBIAN_IMAGE_ID}" name="rb-xml-2" '
            f'adminPass="Secr3tPass"><metadata><meta key="key-1">value-1</meta></metadata>'
            f'<personality><file path="/etc/motd">{b64(b"hello")}</file></personality>'
            f'</rebuild>')
    r = await demo.post(f"/servers/{sid}/action", data=body, headers=XML)
    assert r.status == 202, r.raw
    root = r.xml
    assert root.tag == f"{{{NS}}}server"
    assert root.get("status") == "REBUILD" and root.get("adminPass") == "Secr3tPass"
    assert root.get("name") == "rb-xml-2" and root.get("id") == sid
    assert root.find(f"{{{NS}}}image").get("id") == str(DEBIAN_IMAGE_ID)
    meta = root.find(f"{{{NS}}}metadata/{{{NS}}}meta")
    assert meta.get("key") == "key-1" and meta.text == "value-1"
    assert r.headers["Location"].endswith(f"/servers/{sid}")
    assert set(root.attrib) == {"status", "updated", "hostId", "name", "created", "userId",
                                "tenantId", "accessIPv4", "accessIPv6", "progress", "id",
                                "adminPass"}
    assert [etree.QName(c).localname for c in root] == [
        "image", "flavor", "metadata", "addresses", "link", "link"]
    assert [dict(ip.attrib) for ip in root.iterfind(f".//{{{NS}}}ip")] == [
        {"version": "4", "addr": ip["addr"]} for ip in before["addresses"]["private"]]
    after, seen = await demo.wait_status(sid, lambda s: s["status"] != "REBUILD")
    assert seen == ["REBUILD", "ACTIVE"] and after["addresses"] == before["addresses"]
    await delete_and_wait(demo, sid)


async def test_rebuild_from_error_ends_active_and_from_shutoff_ends_shutoff(demo, cloud):
    broken, _ = await _boot(demo, "rb-error")
    stopped, _ = await _boot(demo, "rb-stopped")
    # A server that went to ERROR (its guest still there), as after a failed action.
    await cloud.fetchval("UPDATE servers SET vm_state = 'error' WHERE id = $1::uuid", broken)
    r = await demo.post(f"/servers/{broken}/action",
                        json={"rebuild": {"imageRef": str(CIRROS_IMAGE_ID)}})
    assert r.status == 202, r.raw
    after, seen = await demo.wait_status(broken, lambda s: s["status"] not in ("ERROR", "REBUILD"))
    assert seen[-2:] == ["REBUILD", "ACTIVE"] and after["OS-EXT-STS:power_state"] == 1

    r = await demo.post(f"/servers/{stopped}/action", json={"os-stop": None})
    assert r.status == 202, r.raw
    await demo.wait_status(stopped, lambda s: s["status"] == "SHUTOFF")
    r = await demo.post(f"/servers/{stopped}/action",
                        json={"rebuild": {"imageRef": str(DEBIAN_IMAGE_ID)}})
    assert r.status == 202, r.raw
    assert r.json["server"]["status"] == "REBUILD"
    after, seen = await demo.wait_status(stopped, lambda s: s["status"] != "REBUILD")
    # As in Nova, a stopped server is stopped again after its rebuild.
    assert seen == ["REBUILD", "SHUTOFF"], seen
    assert after["image"]["id"] == str(DEBIAN_IMAGE_ID) and after["OS-EXT-STS:power_state"] == 4
    await delete_and_wait(demo, broken, stopped)


async def test_rebuild_is_refused_while_building_rebuilding_rescued_or_deleting(demo, cloud):
    r = await demo.boot(name="rb-busy")
    sid = r.json["server"]["id"]
    body = {"rebuild": {"imageRef": str(CIRROS_IMAGE_ID)}}
    r = await demo.post(f"/servers/{sid}/action", json=body)
    assert r.status == 409 and "conflictingRequest" in r.json, r.raw
    await demo.wait_status(sid, _active)

    r = await demo.post(f"/servers/{sid}/action", json=body)
    assert r.status == 202
    r = await demo.post(f"/servers/{sid}/action", json=body)  # one at a time
    assert r.status == 409, r.raw
    await demo.wait_status(sid, _active)

    await cloud.fetchval("UPDATE servers SET vm_state = 'rescued' WHERE id = $1::uuid", sid)
    r = await demo.post(f"/servers/{sid}/action", json=body, xml=True)
    assert r.status == 409 and r.xml.tag.endswith("conflictingRequest"), r.raw
    await cloud.fetchval("UPDATE servers SET vm_state = 'active' WHERE id = $1::uuid", sid)

    r = await demo.delete(f"/servers/{sid}")
    assert r.status == 204
    r = await demo.post(f"/servers/{sid}/action", json=body)
    assert r.status in (404, 409), r.raw
    await demo.wait_status(sid, lambda s: s is None)


@pytest.fixture(scope="module")
async def odd_images(cloud):
    """A public image that is not ACTIVE and one too big for flavor 100's RAM."""
    saving, huge = uuid.uuid4(), uuid.uuid4()
    conn = await cloud.db()
    try:
        await conn.execute(
            """INSERT INTO images (id, name, status, visibility, min_ram_mb)
               VALUES ($1, 'e2e-saving', 'SAVING', 'public', 0),
                      ($2, 'e2e-huge', 'ACTIVE', 'public', 999999)""", saving, huge)
        yield saving, huge
        await conn.execute("UPDATE images SET deleted_at = now() WHERE id = ANY($1::uuid[])",
                           [saving, huge])
    finally:
        await conn.close()


async def test_bad_rebuild_bodies_change_nothing(demo, odd_images):
    saving, huge = odd_images
    sid, before = await _boot(demo, "rb-bad")
    cirros = str(CIRROS_IMAGE_ID)
    cases = [
        ({"rebuild": {}}, 400),
        ({"rebuild": None}, 400),
        ({"rebuild": {"imageRef": "not-an-image"}}, 400),
        ({"rebuild": {"imageRef": str(uuid.uuid4())}}, 400),
        ({"rebuild": {"imageRef": str(saving)}}, 400),
        ({"rebuild": {"imageRef": str(huge)}}, 400),
        ({"rebuild": {"imageRef": cirros, "name": "   "}}, 400),
        ({"rebuild": {"imageRef": cirros, "metadata": {"a": {"nested": 1}}}}, 400),
        ({"rebuild": {"imageRef": cirros, "metadata": {f"k{i}": "v" for i in range(51)}}}, 413),
        ({"rebuild": {"imageRef": cirros, "personality": [
            {"path": f"/f{i}", "contents": b64(b"x")} for i in range(6)]}}, 413),
        ({"rebuild": {"imageRef": cirros, "personality": [
            {"path": "/f", "contents": b64(b"x" * 10241)}]}}, 413),
        ({"rebuild": {"imageRef": cirros, "personality": [
            {"path": "/f", "contents": "not base64!"}]}}, 400),
        ({"rebuild": {"imageRef": cirros, "adminPass": 12}}, 400),
    ]
    for body, status in cases:
        r = await demo.post(f"/servers/{sid}/action", json=body)
        assert r.status == status, (body, r.raw)
    r = await demo.post(f"/servers/{sid}/action", data=f'<rebuild xmlns="{NS}"/>', headers=XML)
    assert r.status == 400 and r.xml.tag.endswith("badRequest"), r.raw
    after = await demo.server(sid)
    assert after["status"] == "ACTIVE" and after["image"] == before["image"]
    assert after["name"] == before["name"] and after["OS-EXT-STS:task_state"] is None
    await delete_and_wait(demo, sid)
