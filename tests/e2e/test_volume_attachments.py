"""Volume attachments end to end (section 4.4.13.11-14): attach, list, show and
detach through the server's compute agent (the fake host plugs the volume into
its guest, and its console says so); the volume's ``attachments``, the server's
``os-extended-volumes:volumes_attached`` and ``os-volume_attachments`` agree at
every step; a deleted server gives its volumes back; every refusal changes
nothing; another project's volume or server is a 404."""

from __future__ import annotations

import asyncio

from lxml import etree

from services.api.representation.xml_rules import EXTENSION_NAMESPACES
from tests.e2e.acting import act, active_server, console, delete_and_wait, fault, settled, watch
from tests.e2e.client import Api, eventually
from tests.e2e.volumes import (
    attach,
    available_volume,
    delete_volume,
    detach,
    volume,
    wait_snapshot,
    wait_snapshot_gone,
    wait_volume,
)

VOL_NS = EXTENSION_NAMESPACES["os-extended-volumes"]


async def statuses(api: Api, vid: str, final: str) -> list[str]:
    """Every status the volume shows until ``final``."""
    seen: list[str] = []

    async def check() -> bool:
        v = await volume(api, vid)
        assert v is not None
        if not seen or seen[-1] != v["status"]:
            seen.append(v["status"])
        return v["status"] == final
    await eventually(check, interval=0.02)
    return seen


async def attached_ids(api: Api, sid: str) -> list[str]:
    server = await api.server(sid)
    assert server is not None
    return [v["id"] for v in server["os-extended-volumes:volumes_attached"]]


async def test_attach_list_show_detach(demo: Api) -> None:
    sid = await active_server(demo, "vol-attach")
    vol = await available_volume(demo, 1, display_name="data")
    vid = vol["id"]
    assert vol["attachments"] == [{}] and await attached_ids(demo, sid) == []

    body = await attach(demo, sid, vid)
    assert body == {"device": "/dev/vdb", "serverId": sid, "id": vid, "volumeId": vid}
    seen = await statuses(demo, vid, "in-use")
    assert seen[-1] == "in-use" and set(seen) <= {"attaching", "in-use"}

    want = {"device": "/dev/vdb", "id": vid, "serverId": sid, "volumeId": vid}
    listed = await demo.get(f"/servers/{sid}/os-volume_attachments")
    assert listed.status == 200 and listed.json == {"volumeAttachments": [want]}
    shown = await demo.get(f"/servers/{sid}/os-volume_attachments/{vid}")
    assert shown.status == 200 and shown.json == {"volumeAttachment": want}
    assert (await volume(demo, vid))["attachments"] == [want]
    assert await attached_ids(demo, sid) == [vid]
    xml = await demo.get(f"/servers/{sid}", xml=True)
    assert [e.get("id") for e in xml.xml.iter(f"{{{VOL_NS}}}volume_attached")] == [vid]
    # The guest got the disk: the fake host's console says so.
    assert f"volume {vid} attached as vdb" in await console(demo, sid)

    # A second volume gets the next device; one named by the caller keeps its name.
    other = await available_volume(demo, 1)
    assert (await attach(demo, sid, other["id"], "/dev/vdf"))["device"] == "/dev/vdf"
    await wait_volume(demo, other["id"], "in-use")
    assert sorted(await attached_ids(demo, sid)) == sorted([vid, other["id"]])

    await detach(demo, sid, vid)
    seen = await statuses(demo, vid, "available")
    assert set(seen) <= {"in-use", "detaching", "available"}
    assert (await volume(demo, vid))["attachments"] == [{}]
    assert await attached_ids(demo, sid) == [other["id"]]
    gone = await demo.get(f"/servers/{sid}/os-volume_attachments/{vid}")
    assert fault(gone, "itemNotFound", 404)
    assert f"volume {vid} detached as vdb" in await console(demo, sid)

    actions = (await demo.get(f"/servers/{sid}/os-instance-actions")).json["instanceActions"]
    assert [a["action"] for a in actions].count("attach_volume") == 2
    assert "detach_volume" in [a["action"] for a in actions]

    await delete_and_wait(demo, sid)
    # Deleting the server gave the other volume back, never lost.
    back = await wait_volume(demo, other["id"], "available")
    assert back is not None and back["attachments"] == [{}]
    await delete_volume(demo, vid)
    await delete_volume(demo, other["id"])


async def test_a_stopped_server_takes_a_volume(demo: Api) -> None:
    sid = await active_server(demo, "vol-stopped")
    assert (await act(demo, sid, {"os-stop": None})).status == 202
    await watch(demo, sid, settled("SHUTOFF"))
    vid = (await available_volume(demo, 1))["id"]
    await attach(demo, sid, vid)
    await wait_volume(demo, vid, "in-use")
    assert (await act(demo, sid, {"os-start": None})).status == 202
    await watch(demo, sid, settled("ACTIVE"))
    assert await attached_ids(demo, sid) == [vid]
    await delete_and_wait(demo, sid)
    await wait_volume(demo, vid, "available")
    await delete_volume(demo, vid)


async def test_refusals_change_nothing(demo: Api, alt: Api) -> None:
    sid = await active_server(demo, "vol-refusals")
    other_sid = await active_server(demo, "vol-refusals-2")
    vid = (await available_volume(demo, 1))["id"]
    alt_vid = (await available_volume(alt, 1))["id"]
    base = f"/servers/{sid}/os-volume_attachments"

    async def post(body: object):
        return await demo.post(base, json=body)

    # Another project's volume, an unknown one, a malformed one: 404.
    assert "could not be found" in fault(await post({"volumeAttachment": {"volumeId": alt_vid}}),
                                         "itemNotFound", 404)
    fault(await post({"volumeAttachment": {"volumeId": "0" * 8 + "-0000-0000-0000-" + "0" * 12}}),
          "itemNotFound", 404)
    fault(await post({"volumeAttachment": {"volumeId": "nope"}}), "itemNotFound", 404)
    # A bad body or device: 400.
    fault(await post({"volumeAttachment": {}}), "badRequest", 400)
    fault(await post({"attachment": {"volumeId": vid}}), "badRequest", 400)
    fault(await post({"volumeAttachment": {"volumeId": vid, "device": "/dev/../etc"}}),
          "badRequest", 400)
    fault(await post({"volumeAttachment": {"volumeId": vid, "device": "/dev/vda"}}),
          "badRequest", 400)
    # Another project's server: 404, whatever the volume.
    r = await alt.post(f"/servers/{sid}/os-volume_attachments",
                       json={"volumeAttachment": {"volumeId": alt_vid}})
    fault(r, "itemNotFound", 404)
    fault(await alt.get(base), "itemNotFound", 404)
    assert (await volume(demo, vid))["status"] == "available"
    assert (await volume(alt, alt_vid))["status"] == "available"

    # In use by one server: another cannot have it (400), nor can it be deleted (400).
    await attach(demo, sid, vid)
    await wait_volume(demo, vid, "in-use")
    r = await demo.post(f"/servers/{other_sid}/os-volume_attachments",
                        json={"volumeAttachment": {"volumeId": vid}})
    assert "available" in fault(r, "badRequest", 400)
    fault(await demo.delete(f"/os-volumes/{vid}"), "badRequest", 400)
    assert await attached_ids(demo, other_sid) == []
    assert (await volume(demo, vid))["attachments"][0]["serverId"] == sid
    # Detach it from the wrong server, or one not attached: 404.
    fault(await demo.delete(f"/servers/{other_sid}/os-volume_attachments/{vid}"),
          "itemNotFound", 404)
    fault(await alt.delete(f"/servers/{sid}/os-volume_attachments/{vid}"), "itemNotFound", 404)
    assert (await volume(demo, vid))["status"] == "in-use"

    # A server in the middle of a task: 409 conflictingRequest.
    assert (await act(demo, other_sid, {"reboot": {"type": "HARD"}})).status == 202
    free = (await available_volume(demo, 1))["id"]
    r = await demo.post(f"/servers/{other_sid}/os-volume_attachments",
                        json={"volumeAttachment": {"volumeId": free}})
    fault(r, "conflictingRequest", 409)
    assert (await volume(demo, free))["status"] == "available"

    await delete_and_wait(demo, sid, other_sid)
    for v in (vid, free):
        await wait_volume(demo, v, "available")
        await delete_volume(demo, v)
    await delete_volume(alt, alt_vid)


async def test_concurrent_attaches_of_one_volume_one_wins(demo: Api) -> None:
    a = await active_server(demo, "vol-race-a")
    b = await active_server(demo, "vol-race-b")
    vid = (await available_volume(demo, 1))["id"]
    answers = await asyncio.gather(*(
        demo.post(f"/servers/{sid}/os-volume_attachments",
                  json={"volumeAttachment": {"volumeId": vid}}) for sid in (a, b, a, b)))
    assert sorted(r.status for r in answers) == [202, 400, 400, 400]
    await wait_volume(demo, vid, "in-use")
    winner = next(r for r in answers if r.status == 202).json["volumeAttachment"]["serverId"]
    assert await attached_ids(demo, winner) == [vid]
    assert await attached_ids(demo, b if winner == a else a) == []
    await delete_and_wait(demo, a, b)
    await wait_volume(demo, vid, "available")
    await delete_volume(demo, vid)


async def test_xml_attachment_list(demo: Api) -> None:
    sid = await active_server(demo, "vol-xml")
    vid = (await available_volume(demo, 1))["id"]
    await attach(demo, sid, vid, "vdc")
    await wait_volume(demo, vid, "in-use")
    r = await demo.get(f"/servers/{sid}/os-volume_attachments", xml=True)
    assert r.status == 200, r.raw
    items = [e for e in r.xml if etree.QName(e).localname == "volumeAttachment"]
    assert [(e.get("device"), e.get("volumeId"), e.get("serverId")) for e in items] == \
        [("/dev/vdc", vid, sid)]
    await delete_and_wait(demo, sid)
    await wait_volume(demo, vid, "available")
    await delete_volume(demo, vid)


async def test_whole_volume_life_with_a_forced_snapshot_of_an_in_use_volume(demo: Api) -> None:
    """The issue's walk: create, attach, snapshot (force while in use), detach, a volume
    from the snapshot attached to another server, delete everything."""
    a = await active_server(demo, "life-a")
    b = await active_server(demo, "life-b")
    vid = (await available_volume(demo, 1, display_name="life"))["id"]
    await attach(demo, a, vid)
    await wait_volume(demo, vid, "in-use")

    plain = await demo.post("/os-snapshots", json={"snapshot": {"volume_id": vid}})
    assert "in-use" in fault(plain, "badRequest", 400)
    forced = await demo.post("/os-snapshots", json={"snapshot": {
        "volume_id": vid, "force": True, "display_name": "while-attached"}})
    assert forced.status == 202, forced.raw
    snap = forced.json["snapshot"]
    assert snap["volume_id"] == vid and snap["size"] == 1
    await wait_snapshot(demo, snap["id"])
    assert (await volume(demo, vid))["status"] == "in-use"   # the volume never left its server

    await detach(demo, a, vid)
    await wait_volume(demo, vid, "available")
    copy = await available_volume(demo, 1, snapshot_id=snap["id"])
    assert copy["snapshotId"] == snap["id"]
    await attach(demo, b, copy["id"])
    await wait_volume(demo, copy["id"], "in-use")
    assert f"volume {copy['id']} attached as vdb" in await console(demo, b)

    # A volume with a snapshot cannot go before it (400), then can.
    fault(await demo.delete(f"/os-volumes/{vid}"), "badRequest", 400)
    assert (await demo.delete(f"/os-snapshots/{snap['id']}")).status == 202
    await wait_snapshot_gone(demo, snap["id"])
    await delete_volume(demo, vid)
    await delete_and_wait(demo, a, b)
    await wait_volume(demo, copy["id"], "available")
    await delete_volume(demo, copy["id"])
