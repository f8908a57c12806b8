"""Volume snapshots end to end (section 4.4.13.6-10): create, show, list, list detail
and delete in JSON and XML, volumes made from a snapshot, the rules between a
volume and its snapshots, refusals that change nothing, project isolation.

A snapshot of an in-use volume (``force``) needs an attached volume: the attach
API is not part of this suite (see tests/integration/test_volume_rules.py for the
rule, held still with the agents' own guarded updates).
"""

from __future__ import annotations

import uuid

from tests.e2e.client import Api, Cloud
from tests.e2e.projects import new_project
from tests.e2e.volumes import (
    ISO_Z,
    SNAPSHOT_KEYS,
    VOLUME_NS,
    available_snapshot,
    available_volume,
    create,
    delete_volumes,
    rows,
    snapshot,
    volume,
    wait_snapshot,
    wait_snapshot_gone,
    wait_volume,
    wait_volume_gone,
)


async def test_snapshot_lifecycle_and_volumes_made_from_it(demo: Api) -> None:
    source = await available_volume(demo, 2, availability_zone="az3", display_name="source")
    r = await demo.post("/os-snapshots", json={"snapshot": {
        "display_name": "snap-001", "display_description": "Daily backup",
        "volume_id": source["id"], "force": False}})
    assert r.status == 202, r.raw
    made = r.json["snapshot"]
    sid = made["id"]
    assert set(made) == SNAPSHOT_KEYS and ISO_Z.match(made["created_at"])
    assert {k: v for k, v in made.items() if k not in ("id", "created_at")} == {
        "display_name": "snap-001", "display_description": "Daily backup",
        "volume_id": source["id"], "status": "creating", "size": 2}
    shown = await wait_snapshot(demo, sid)       # creating -> available, by the service
    assert shown == {**made, "status": "available"}
    for path in ("/os-snapshots", "/os-snapshots/detail"):
        assert [s for s in (await demo.get(path)).json["snapshots"] if s["id"] == sid] == [shown]

    # The volume cannot go while its snapshot lives; nothing changes.
    r = await demo.delete(f"/os-volumes/{source['id']}")
    assert r.status == 400
    assert r.json["badRequest"]["message"] == \
        "Invalid volume: Volume still has 1 dependent snapshots"
    assert await volume(demo, source["id"]) == source

    # A volume from it: the snapshot's size and zone unless told otherwise.
    r = await create(demo, None, snapshot_id=sid, display_name="restored")
    assert r.status == 202, r.raw
    assert (r.json["volume"]["snapshot_id"], r.json["volume"]["size"]) == (sid, 2)
    restored = await wait_volume(demo, r.json["volume"]["id"])
    assert (restored["snapshotId"], restored["size"], restored["availabilityZone"]) == \
        (sid, 2, "az3")
    bigger = await available_volume(demo, 3, snapshot_id=sid)
    assert bigger["size"] == 3
    r = await create(demo, 1, snapshot_id=sid)
    assert r.status == 400
    assert r.json["badRequest"]["message"] == ("Volume size '1'GB cannot be smaller than the "
                                               "snapshot size 2GB. They must be >= original "
                                               "snapshot size.")
    r = await create(demo, None, snapshot_id=sid, availability_zone="az1")
    assert r.status == 400 and "same availability zone as the snapshot" in r.raw.decode()

    assert (await demo.delete(f"/os-snapshots/{sid}")).status == 202
    await wait_snapshot_gone(demo, sid)
    r = await demo.get(f"/os-snapshots/{sid}")
    assert r.status == 404
    assert r.json["itemNotFound"]["message"] == f"Snapshot {sid} could not be found."
    assert sid not in {s["id"] for s in (await demo.get("/os-snapshots")).json["snapshots"]}
    # Volumes made from it are their own: they outlive it; the source can go now.
    assert (await volume(demo, restored["id"]))["status"] == "available"
    assert (await demo.delete(f"/os-volumes/{source['id']}")).status == 202
    await wait_volume_gone(demo, source["id"])
    await delete_volumes(demo)


async def test_snapshots_in_xml(demo: Api) -> None:
    source = await available_volume(demo, 1)
    body = (f'<?xml version="1.0" encoding="UTF-8"?><snapshot '
            f'xmlns="http://docs.openstack.org/volume/api/v1" display_name="snap-xml" '
            f'display_description="Daily backup" volume_id="{source["id"]}" force="true"/>')
    r = await demo.post("/os-snapshots", data=body, headers={"Content-Type": "application/xml"},
                        xml=True)
    assert r.status == 202, r.raw
    assert r.xml.tag == f"{{{VOLUME_NS}}}snapshot"
    sid = r.xml.get("id")
    assert {k: r.xml.get(k) for k in ("display_name", "display_description", "volume_id",
                                      "status", "size")} == {
        "display_name": "snap-xml", "display_description": "Daily backup",
        "volume_id": source["id"], "status": "creating", "size": "1"}
    await wait_snapshot(demo, sid)
    r = await demo.get(f"/os-snapshots/{sid}.xml")
    assert r.xml.tag == f"{{{VOLUME_NS}}}snapshot" and r.xml.get("status") == "available"
    assert ISO_Z.match(r.xml.get("created_at")) and len(r.xml) == 0
    for path in ("/os-snapshots.xml", "/os-snapshots/detail.xml"):
        r = await demo.get(path)
        assert r.xml.tag == f"{{{VOLUME_NS}}}snapshots"
        assert sid in [s.get("id") for s in r.xml.findall(f"{{{VOLUME_NS}}}snapshot")]
    r = await demo.delete(f"/os-snapshots/{uuid.uuid4()}.xml")
    assert r.status == 404 and r.xml.tag.endswith("itemNotFound")
    await delete_volumes(demo)


async def test_refused_snapshots_change_nothing(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    source = await available_volume(api, 1)
    before = await rows(cloud, api.project_id)
    vid = source["id"]
    cases = [
        ({}, 400, "volume_id"),
        ({"volume_id": vid, "force": "maybe"}, 400, "Invalid value 'maybe' for force"),
        ({"volume_id": vid, "display_name": ["x"]}, 400, "display_name"),
        ({"volume_id": "nope"}, 404, "Volume nope could not be found."),
        ({"volume_id": str(uuid.uuid4())}, 404, "could not be found."),
    ]
    for fields, code, message in cases:
        r = await api.post("/os-snapshots", json={"snapshot": fields})
        assert r.status == code, (fields, r.raw)
        assert message in r.json["badRequest" if code == 400 else "itemNotFound"]["message"]
    assert (await api.post("/os-snapshots", json={"volume_id": vid})).status == 400
    for bad in ("nope", str(uuid.uuid4())):
        assert (await api.get(f"/os-snapshots/{bad}")).status == 404
        assert (await api.delete(f"/os-snapshots/{bad}")).status == 404
    assert await rows(cloud, api.project_id) == before
    await delete_volumes(api)


async def test_another_projects_snapshot_is_not_found(demo: Api, alt: Api) -> None:
    source = await available_volume(demo, 1)
    snap = await available_snapshot(demo, source["id"], display_name="mine")
    sid = snap["id"]
    for r in (await alt.get(f"/os-snapshots/{sid}"), await alt.delete(f"/os-snapshots/{sid}")):
        assert r.status == 404
        assert r.json["itemNotFound"]["message"] == f"Snapshot {sid} could not be found."
    r = await create(alt, None, snapshot_id=sid)
    assert r.status == 404 and r.json["itemNotFound"]["message"] == \
        f"Snapshot {sid} could not be found."
    assert sid not in {s["id"] for s in (await alt.get("/os-snapshots/detail")).json["snapshots"]}
    assert await snapshot(demo, sid) == snap
    await delete_volumes(demo)
