"""Boot from a volume end to end (section 2.2.1): a volume made from an image
boots a server with no ``imageRef`` through ``block_device_mapping`` (v1) and
``block_device_mapping_v2``; the server's root disk is that volume, which
survives the server's delete unless ``delete_on_termination`` says otherwise;
what cannot be done is refused before anything is written."""

from __future__ import annotations

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.acting import act, console, delete_and_wait, fault, settled, watch
from tests.e2e.client import Api
from tests.e2e.volumes import (
    available_volume,
    delete_volume,
    volume,
    wait_volume,
    wait_volume_gone,
)


def active(s: dict | None) -> bool:
    return bool(s) and s["status"] == "ACTIVE"


async def boot(api: Api, name: str, **server: object):
    return await api.post("/servers", json={"server": {"name": name, "flavorRef": "100",
                                                       **server}})


async def count_servers(api: Api) -> int:
    return len((await api.get("/servers")).json["servers"])


async def test_boot_from_a_volume_v2_keeps_it_after_delete(demo: Api) -> None:
    vol = await available_volume(demo, 1, imageRef=str(CIRROS_IMAGE_ID), display_name="root")
    vid = vol["id"]
    r = await boot(demo, "bfv-v2", imageRef="", block_device_mapping_v2=[{
        "boot_index": 0, "uuid": vid, "source_type": "volume", "destination_type": "volume",
        "delete_on_termination": False}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    # Taken for the server at once: nobody else can have it meanwhile.
    assert (await volume(demo, vid))["status"] == "in-use"
    server, _ = await demo.wait_status(sid, active)
    assert server["image"] == ""            # as Nova shows a volume-backed server
    assert server["os-extended-volumes:volumes_attached"] == [{"id": vid}]
    v = await volume(demo, vid)
    assert v["status"] == "in-use" and v["attachments"] == [
        {"device": "/dev/vda", "id": vid, "serverId": sid, "volumeId": vid}]
    assert f"from volume {vid}" in await console(demo, sid)

    # Its root disk cannot be detached, re-imaged or copied into an image.
    fault(await demo.delete(f"/servers/{sid}/os-volume_attachments/{vid}"), "badRequest", 400)
    rebuilt = await act(demo, sid, {"rebuild": {"imageRef": str(CIRROS_IMAGE_ID)}})
    assert "boots from a volume" in fault(rebuilt, "badRequest", 400)
    fault(await act(demo, sid, {"createImage": {"name": "no"}}), "badRequest", 400)
    assert (await demo.server(sid))["status"] == "ACTIVE"
    # Rescued with the image its volume was made from, the volume beside it.
    assert (await act(demo, sid, {"rescue": None})).status == 200
    await watch(demo, sid, settled("RESCUE"))
    assert (await act(demo, sid, {"unrescue": None})).status == 200
    await watch(demo, sid, settled("ACTIVE"))

    await delete_and_wait(demo, sid)
    kept = await wait_volume(demo, vid, "available")
    assert kept is not None and kept["attachments"] == [{}]
    await delete_volume(demo, vid)


async def test_boot_from_a_volume_v1_deleted_with_its_server(demo: Api) -> None:
    vid = (await available_volume(demo, 1, imageRef=str(CIRROS_IMAGE_ID)))["id"]
    data = (await available_volume(demo, 1))["id"]
    r = await boot(demo, "bfv-v1", block_device_mapping=[
        {"volume_id": vid, "device_name": "vda", "delete_on_termination": "1"},
        {"volume_id": data, "device_name": "/dev/vdc"}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, active)
    attachments = (await demo.get(f"/servers/{sid}/os-volume_attachments")).json
    assert sorted((a["device"], a["volumeId"]) for a in attachments["volumeAttachments"]) == \
        [("/dev/vda", vid), ("/dev/vdc", data)]
    await delete_and_wait(demo, sid)
    # delete_on_termination: the root volume went with the server; the other stayed.
    await wait_volume_gone(demo, vid)
    assert (await wait_volume(demo, data, "available")) is not None
    await delete_volume(demo, data)


async def test_bad_mappings_are_refused_and_make_nothing(demo: Api) -> None:
    vid = (await available_volume(demo, 1, imageRef=str(CIRROS_IMAGE_ID)))["id"]
    before = await count_servers(demo)
    v2 = {"boot_index": 0, "uuid": vid, "source_type": "volume", "destination_type": "volume"}
    cases = [
        # several servers cannot share one volume
        {"block_device_mapping_v2": [v2], "max_count": 2, "min_count": 2},
        # both syntaxes at once
        {"block_device_mapping_v2": [v2],
         "block_device_mapping": [{"volume_id": vid, "device_name": "vda"}]},
        # a volume that is not there, or not a volume id
        {"block_device_mapping_v2": [{**v2, "uuid": "6f1c0000-0000-4000-8000-000000000000"}]},
        {"block_device_mapping_v2": [{**v2, "uuid": "nope"}]},
        # making a volume at create is not built: said so
        {"block_device_mapping_v2": [{**v2, "source_type": "image"}]},
        # no image and no boot volume
        {"block_device_mapping_v2": [{**v2, "boot_index": None}]},
        # the same volume twice
        {"block_device_mapping_v2": [v2, {**v2, "boot_index": 1}]},
    ]
    for extra in cases:
        r = await boot(demo, "bfv-bad", **extra)
        fault(r, "badRequest", 400)
    assert await count_servers(demo) == before
    assert (await volume(demo, vid))["status"] == "available"
    await delete_volume(demo, vid)


async def test_another_projects_volume_cannot_boot_a_server(demo: Api, alt: Api) -> None:
    vid = (await available_volume(demo, 1))["id"]
    r = await boot(alt, "bfv-steal", block_device_mapping_v2=[{
        "boot_index": 0, "uuid": vid, "source_type": "volume", "destination_type": "volume"}])
    assert "could not be found" in fault(r, "badRequest", 400)
    assert (await volume(demo, vid))["status"] == "available"
    await delete_volume(demo, vid)


async def test_a_volume_made_from_no_image_cannot_be_rescued(demo: Api) -> None:
    vid = (await available_volume(demo, 1))["id"]   # blank: nothing to rescue it with
    r = await boot(demo, "bfv-blank", block_device_mapping_v2=[{
        "boot_index": 0, "uuid": vid, "source_type": "volume", "destination_type": "volume"}])
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, active)
    assert "not made from an image" in fault(await act(demo, sid, {"rescue": None}),
                                             "badRequest", 400)
    assert (await demo.server(sid))["status"] == "ACTIVE"
    await delete_and_wait(demo, sid)
    await wait_volume(demo, vid, "available")
    await delete_volume(demo, vid)
