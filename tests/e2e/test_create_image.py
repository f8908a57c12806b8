"""Create image (section 4.4.1.19) end to end, in JSON and XML: a private snapshot of the
project, SAVING then ACTIVE, linked to its server and carrying the given metadata,
named by the Location header; it boots a new server; another project never sees
it; maxImageMeta is enforced; the states it is refused in (409)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from services.api.catalog import CIRROS_IMAGE_ID
from tests.e2e.acting import delete_and_wait
from tests.e2e.client import NS, Api, eventually
from tests.e2e.projects import new_project

XML = {"Content-Type": "application/xml", "Accept": "application/xml"}
LOCATION = re.compile(r"^http://127\.0\.0\.1:\d+/v2/(?P<project>[^/]+)/images/(?P<id>[0-9a-f-]{36})$")


def _active(s):
    return s is not None and s["status"] == "ACTIVE"


async def _boot(demo: Api, name: str, **extra) -> str:
    r = await demo.boot(name=name, **extra)
    assert r.status == 202, r.raw
    sid = r.json["server"]["id"]
    await demo.wait_status(sid, _active)
    return sid


async def _image_states(api: Api, image_id: str, timeout: float = 20.0) -> tuple[dict, list[str]]:
    """Poll the image until it leaves SAVING; it and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        r = await api.get(f"/images/{image_id}")
        assert r.status == 200, r.raw
        image = r.json["image"]
        if not seen or seen[-1] != image["status"]:
            seen.append(image["status"])
        if image["status"] != "SAVING":
            return image, seen
        assert time.monotonic() < deadline, f"image {image_id} still SAVING"


async def test_create_image_json_snapshot_saving_then_active_and_bootable(demo, alt, cloud):
    sid = await _boot(demo, "snap-src")
    r = await demo.post(f"/servers/{sid}/action", json={"createImage": {
        "name": "snap-json", "metadata": {"purpose": "e2e", "image_type": "mine"}}})
    assert r.status == 202, r.raw
    assert r.raw == b""
    m = LOCATION.match(r.headers["Location"])
    assert m and m["project"] == demo.project_id, r.headers["Location"]
    image_id, rid = m["id"], r.headers["X-Compute-Request-Id"]

    # SAVING (progress 0) while the server shows the snapshot task, then ACTIVE.
    statuses: list[str] = []
    tasks: list[str | None] = []

    async def saved():
        image = (await demo.get(f"/images/{image_id}")).json["image"]
        server = await demo.server(sid)
        if not statuses or statuses[-1] != image["status"]:
            statuses.append(image["status"])
            assert image["status"] != "SAVING" or image["progress"] == 0
        tasks.append(server["OS-EXT-STS:task_state"])
        assert server["status"] == "ACTIVE"
        done = image["status"] != "SAVING" and server["OS-EXT-STS:task_state"] is None
        return image if done else None
    image = await eventually(saved, interval=0.05)
    assert statuses == ["SAVING", "ACTIVE"], statuses
    assert "image_snapshot" in tasks
    assert image["status"] == "ACTIVE" and image["progress"] == 100
    assert image["name"] == "snap-json" and image["server"]["id"] == sid
    assert image["OS-EXT-IMG-SIZE:size"] >= 13147648  # at least its base image (CirrOS)
    assert image["minDisk"] == 10 and image["minRam"] == 64  # flavor 100's disk, CirrOS's RAM
    assert image["updated"] >= image["created"]
    meta = image["metadata"]
    assert meta["purpose"] == "e2e" and meta["image_type"] == "mine"  # the user's win
    assert meta["instance_uuid"] == sid and meta["base_image_ref"] == str(CIRROS_IMAGE_ID)
    assert meta["image_location"] == "snapshot" and meta["image_state"] == "available"
    assert meta["os_distro"] == "cirros"  # inherited from the base image
    assert meta["owner_id"] == demo.project_id and meta["instance_type_flavorid"] == "100"

    r = await demo.get(f"/images/detail?server={sid}")
    assert [i["id"] for i in r.json["images"]] == [image_id]
    # Private to the project.
    assert (await alt.get(f"/images/{image_id}")).status == 404
    assert image_id not in {i["id"] for i in (await alt.get("/images")).json["images"]}
    r = await alt.boot(name="steal", image=image_id)
    assert r.status == 400, r.raw

    action = await eventually(lambda: _finished_event(demo, sid, rid, "compute_snapshot_instance"))
    assert action["action"] == "createImage"

    # The snapshot boots a new server.
    child = await _boot(demo, "from-snap", image=image_id)
    assert (await demo.server(child))["image"]["id"] == image_id
    await delete_and_wait(demo, sid, child)
    # The image is a real file in the image store, its size the image's size; it
    # goes with the image.
    store = Path(cloud.stack.env["NIMBUS_IMAGES_DIR"])
    location = await cloud.fetchval("SELECT location FROM images WHERE id = $1",
                                    uuid.UUID(image_id))
    assert location == f"{image_id}.raw"
    assert (store / location).stat().st_size == image["OS-EXT-IMG-SIZE:size"]
    assert (await demo.delete(f"/images/{image_id}")).status == 204
    assert not (store / location).exists()


async def test_seeded_images_have_files_of_their_size(demo, cloud):
    store = Path(cloud.stack.env["NIMBUS_IMAGES_DIR"])
    images = (await demo.get("/images/detail")).json["images"]
    seeded = [i for i in images if "server" not in i]
    assert len(seeded) >= 3
    for image in seeded:
        location = await cloud.fetchval("SELECT location FROM images WHERE id = $1",
                                        uuid.UUID(image["id"]))
        assert (store / location).stat().st_size == image["OS-EXT-IMG-SIZE:size"], image["name"]


async def _finished_event(demo: Api, sid: str, rid: str, name: str):
    r = await demo.get(f"/servers/{sid}/os-instance-actions/{rid}")
    assert r.status == 200, r.raw
    events = {e["event"]: e for e in r.json["instanceAction"]["events"]}
    event = events.get(name)
    if event and event["finish_time"]:
        assert event["result"] == "Success", event
        return r.json["instanceAction"]
    return None


async def test_create_image_xml_and_from_shutoff(demo):
    sid = await _boot(demo, "snap-xml-src")
    body = (f'<?xml version="1.0" encoding="UTF-8"?><createImage xmlns="{NS}" name="snap-xml">'
            f'<metadata><meta key="key-1">value-1</meta></metadata></createImage>')
    r = await demo.post(f"/servers/{sid}/action", data=body, headers=XML)
    assert r.status == 202 and r.raw == b"", r.raw
    image_id = LOCATION.match(r.headers["Location"])["id"]
    image, _ = await _image_states(demo, image_id)
    assert image["status"] == "ACTIVE" and image["metadata"]["key-1"] == "value-1"
    r = await demo.get(f"/images/{image_id}", xml=True)
    assert r.xml.get("status") == "ACTIVE" and r.xml.get("name") == "snap-xml"

    await demo.wait_status(sid, lambda s: s["OS-EXT-STS:task_state"] is None)
    r = await demo.post(f"/servers/{sid}/action", json={"os-stop": None})
    assert r.status == 202, r.raw
    await demo.wait_status(sid, lambda s: s["status"] == "SHUTOFF" and
                           s["OS-EXT-STS:task_state"] is None)
    r = await demo.post(f"/servers/{sid}/action", data='<createImage name="cold"/>',
                        headers=XML)
    assert r.status == 202, r.raw
    cold, _ = await _image_states(demo, LOCATION.match(r.headers["Location"])["id"])
    assert cold["status"] == "ACTIVE"
    server, _ = await demo.wait_status(sid, lambda s: s["OS-EXT-STS:task_state"] is None)
    assert server["status"] == "SHUTOFF"
    await delete_and_wait(demo, sid)
    for i in (image_id, cold["id"]):
        assert (await demo.delete(f"/images/{i}")).status == 204


async def test_bad_create_image_bodies_create_nothing(demo, cloud):
    sid = await _boot(demo, "snap-bad")
    cases = [
        ({"createImage": {}}, 400),
        ({"createImage": None}, 400),
        ({"createImage": {"name": "   "}}, 400),
        ({"createImage": {"name": "x" * 256}}, 400),
        ({"createImage": {"name": "m", "metadata": {"a": ["b"]}}}, 400),
        ({"createImage": {"name": "m", "metadata": {"k" * 256: "v"}}}, 400),
        ({"createImage": {"name": "m", "metadata": {f"k{i}": "v" for i in range(51)}}}, 413),
    ]
    for body, status in cases:
        r = await demo.post(f"/servers/{sid}/action", json=body)
        assert r.status == status, (body, r.raw)
    r = await demo.post(f"/servers/{sid}/action", data=f'<createImage xmlns="{NS}"/>',
                        headers=XML)
    assert r.status == 400 and r.xml.tag.endswith("badRequest"), r.raw
    assert await cloud.fetchval("SELECT count(*) FROM images WHERE server_id = $1::uuid", sid) == 0
    assert (await demo.server(sid))["OS-EXT-STS:task_state"] is None
    await delete_and_wait(demo, sid)


async def test_a_project_own_max_image_meta_is_enforced(cloud):
    api, _ = await new_project(cloud, maxImageMeta=2)
    r = await api.boot(name="meta-limit")
    sid = r.json["server"]["id"]
    await api.wait_status(sid, _active)
    r = await api.post(f"/servers/{sid}/action", json={"createImage": {
        "name": "too-much", "metadata": {"a": "1", "b": "2", "c": "3"}}})
    assert r.status == 413 and "overLimit" in r.json, r.raw
    r = await api.post(f"/servers/{sid}/action", json={"createImage": {
        "name": "fits", "metadata": {"a": "1", "b": "2"}}})
    assert r.status == 202, r.raw
    image, _ = await _image_states(api, LOCATION.match(r.headers["Location"])["id"])
    assert image["status"] == "ACTIVE"
    await delete_and_wait(api, sid)


async def test_create_image_is_refused_while_building_snapshotting_or_in_error(demo, alt, cloud):
    r = await demo.boot(name="snap-busy")
    sid = r.json["server"]["id"]
    body = {"createImage": {"name": "busy"}}
    r = await demo.post(f"/servers/{sid}/action", json=body)
    assert r.status == 409 and "conflictingRequest" in r.json, r.raw
    await demo.wait_status(sid, _active)

    r = await demo.post(f"/servers/{sid}/action", json=body)
    assert r.status == 202
    first = LOCATION.match(r.headers["Location"])["id"]
    r = await demo.post(f"/servers/{sid}/action", json=body)  # one snapshot at a time
    assert r.status == 409, r.raw
    await _image_states(demo, first)
    await demo.wait_status(sid, lambda s: s["OS-EXT-STS:task_state"] is None)

    r = await alt.post(f"/servers/{sid}/action", json=body)
    assert r.status == 404

    await cloud.fetchval("UPDATE servers SET vm_state = 'error' WHERE id = $1::uuid", sid)
    r = await demo.post(f"/servers/{sid}/action", json=body, xml=True)
    assert r.status == 409 and r.xml.tag.endswith("conflictingRequest"), r.raw
    assert await cloud.fetchval("SELECT count(*) FROM images WHERE server_id = $1::uuid", sid) == 1
    await delete_and_wait(demo, sid)
    assert (await demo.delete(f"/images/{first}")).status == 204
