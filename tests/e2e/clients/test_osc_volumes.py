"""``openstack volume ...``, ``volume snapshot ...`` and ``server add/remove volume``."""

from __future__ import annotations

from tests.e2e.client import eventually
from tests.e2e.clients.conftest import Clients


async def test_volume_life_on_a_server(clients: Clients, server: dict, demo):
    name = clients.name("data")
    made = await clients.osc_json("volume", "create", "--size", "1", "--description", "scratch",
                                  name)
    assert (made["name"], made["size"], made["description"]) == (name, 1, "scratch")
    vid = made["id"]
    try:
        await eventually(lambda: _volume_status_is(clients, vid, "available"), timeout=30)
        listed = await clients.osc_json("volume", "list")
        assert [(v["Name"], v["Status"], v["Size"], v["Attached to"]) for v in listed
                if v["ID"] == vid] == [(name, "available", 1, [])]
        shown = await clients.osc_json("volume", "show", name)
        assert (shown["id"], shown["size"], shown["status"]) == (vid, 1, "available")
        api = await demo.get(f"/os-volumes/{vid}")
        assert (api.json["volume"]["displayName"], api.json["volume"]["size"]) == (name, 1)

        attached = await clients.osc_json("server", "add", "volume", server["id"], vid)
        assert (attached["Server ID"], attached["Volume ID"]) == (server["id"], vid)
        device = attached["Device"]
        assert device.startswith("/dev/")
        await eventually(lambda: _volume_status_is(clients, vid, "in-use"), timeout=30)
        shown = await clients.osc_json("volume", "show", vid)
        assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [
            (server["id"], device)]
        listed = await clients.osc_json("volume", "list", "--name", name)
        assert [a["server_id"] for a in listed[0]["Attached to"]] == [server["id"]]
        api = await demo.get(f"/servers/{server['id']}/os-volume_attachments")
        assert [(a["volumeId"], a["device"]) for a in api.json["volumeAttachments"]] == [
            (vid, device)]

        await clients.osc("server", "remove", "volume", server["id"], vid)
        await eventually(lambda: _volume_status_is(clients, vid, "available"), timeout=30)
        api = await demo.get(f"/servers/{server['id']}/os-volume_attachments")
        assert api.json["volumeAttachments"] == []

        snap = await clients.osc_json("volume", "snapshot", "create", "--volume", vid,
                                      clients.name("snap"))
        assert (snap["volume_id"], snap["size"], snap["name"]) == (vid, 1, clients.name("snap"))
        await eventually(lambda: _snapshot_status_is(clients, snap["id"], "available"),
                         timeout=30)
        listed = await clients.osc_json("volume", "snapshot", "list")
        assert [(s["Name"], s["Size"]) for s in listed if s["ID"] == snap["id"]] == [
            (clients.name("snap"), 1)]
        await clients.osc("volume", "snapshot", "delete", snap["id"])
        await eventually(lambda: _snapshot_gone(clients, snap["id"]), timeout=30)
    finally:
        await clients.run("openstack", "volume", "delete", vid, check=False)
    await eventually(lambda: _volume_gone(clients, vid), timeout=30)
    assert (await demo.get(f"/os-volumes/{vid}")).status == 404


async def _volume_status_is(clients: Clients, vid: str, status: str) -> bool:
    out = await clients.osc("volume", "show", vid, "-c", "status", "-f", "value")
    return out.strip() == status


async def _snapshot_status_is(clients: Clients, sid: str, status: str) -> bool:
    out = await clients.osc("volume", "snapshot", "show", sid, "-c", "status", "-f", "value")
    return out.strip() == status


async def _snapshot_gone(clients: Clients, sid: str) -> bool:
    return sid not in [s["ID"] for s in await clients.osc_json("volume", "snapshot", "list")]


async def _volume_gone(clients: Clients, vid: str) -> bool:
    return vid not in [v["ID"] for v in await clients.osc_json("volume", "list")]
