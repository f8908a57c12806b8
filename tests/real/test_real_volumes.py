"""Volumes on real guests, through the HTTP API: a volume made by the volume
service is hot-plugged into a running QEMU guest, which sees a new disk and
writes on it; detached and attached to another server, the data is still there;
a volume made from the Tiny Linux image boots a server and outlives it.

What the guest sees is read from its own serial console: Nimbus Tiny Linux
prints ``nimbus-disk: vdb added size=... serial=...`` for a disk plugged in,
``wrote=written-by-<hostname>`` on a blank one and ``data=...`` on a marked one.
"""

from __future__ import annotations

from tests.e2e.client import Api, Cloud
from tests.e2e.volumes import (
    attach,
    available_volume,
    delete_volume,
    detach,
    wait_volume,
    wait_volume_gone,
)
from tests.real.test_real_guests import TINY, console_shows, settled

GIB = 1 << 30


async def _boot(api: Api, name: str, **server: object) -> str:
    body = {"server": {"name": name, "flavorRef": "100", **server}}
    r = await api.post("/servers", json=body)
    assert r.status == 202, r.raw
    return r.json["server"]["id"]


async def _delete(api: Api, sid: str) -> None:
    r = await api.delete(f"/servers/{sid}")
    assert r.status == 204, r.raw
    await api.wait_status(sid, lambda s: s is None, timeout=120)


async def test_a_volume_follows_its_data_from_guest_to_guest(real_cloud: Cloud,
                                                             real_demo: Api) -> None:
    api = real_demo
    a = await _boot(api, "vol-a", imageRef=TINY)
    b = await _boot(api, "vol-b", imageRef=TINY)
    vol = await available_volume(api, 1, display_name="follows")
    vid = vol["id"]
    for sid in (a, b):
        await settled(api, sid, "ACTIVE")
        await console_shows(api, sid, r"nimbus-tiny: ready")

    # Hot-plugged into A: its guest sees a new 1 GiB disk with the volume's serial,
    # finds it blank and marks it.
    assert (await attach(api, a, vid))["device"] == "/dev/vdb"
    await wait_volume(api, vid, "in-use", timeout=120)
    await console_shows(api, a, rf"nimbus-disk: vdb added size={GIB} serial={vid[:20]}")
    await console_shows(api, a, r"nimbus-disk: vdb wrote=written-by-vol-a")

    # Detached: the guest lets go of it (it says so), and it is free again.
    await detach(api, a, vid)
    await wait_volume(api, vid, "available", timeout=120)
    await console_shows(api, a, r"nimbus-disk: vdb removed")

    # On B, the data A wrote is there.
    await attach(api, b, vid)
    await wait_volume(api, vid, "in-use", timeout=120)
    await console_shows(api, b, r"nimbus-disk: vdb data=written-by-vol-a")

    # Deleting B gives the volume back, data and all.
    await _delete(api, b)
    await wait_volume(api, vid, "available", timeout=120)
    await _delete(api, a)
    await delete_volume(api, vid)


async def test_a_server_boots_from_a_volume_and_the_volume_outlives_it(real_cloud: Cloud,
                                                                      real_demo: Api) -> None:
    api = real_demo
    root = await available_volume(api, 1, imageRef=TINY, display_name="root")
    assert root["size"] == 1
    sid = await _boot(api, "from-volume", imageRef="", block_device_mapping_v2=[{
        "boot_index": 0, "uuid": root["id"], "source_type": "volume",
        "destination_type": "volume", "delete_on_termination": False}])
    server = await settled(api, sid, "ACTIVE")
    assert server["image"] == ""
    # The guest booted the image's system from the volume, and counts its boots on it.
    await console_shows(api, sid, r"nimbus-tiny: ready")
    await console_shows(api, sid, rf"nimbus-tiny: disk boot 1, first booted by {sid}")
    await _delete(api, sid)
    kept = await wait_volume(api, root["id"], "available", timeout=120)
    assert kept["attachments"] == [{}]

    # A second server boots from the same volume: the disk remembers the first.
    again = await _boot(api, "from-volume-2", block_device_mapping=[
        {"volume_id": root["id"], "device_name": "vda", "delete_on_termination": True}])
    await settled(api, again, "ACTIVE")
    await console_shows(api, again, rf"nimbus-tiny: disk boot 2, first booted by {sid}")
    await _delete(api, again)
    # delete_on_termination: the volume went with the second server.
    await wait_volume_gone(api, root["id"], timeout=120)
