"""Volumes end to end (section 4.4.13.1-5, extension os-volumes): create, show, list,
list detail and delete in JSON and XML, with the volume service making and removing
the bits; volumes from an image; refusals that change nothing; the quotas under
concurrent creates, the limits that show them, project isolation and paging.

Snapshots and volumes made from them are in ``test_volume_snapshots``.
"""

from __future__ import annotations

import asyncio
import uuid

from lxml import etree

from services.api.catalog import CIRROS_IMAGE_ID, UBUNTU_IMAGE_ID
from tests.e2e.client import ATOM, NS, Api, Cloud, eventually
from tests.e2e.paging import next_href
from tests.e2e.projects import manage, new_project
from tests.e2e.volumes import (
    CREATED_KEYS,
    ISO_MICRO,
    ISO_Z,
    VOLUME_KEYS,
    VOLUME_NS,
    available_volume,
    create,
    delete_volumes,
    rows,
    volume,
    wait_volume,
    wait_volume_gone,
)

COMMON = "http://docs.openstack.org/common/api/v1.0"


async def test_create_show_list_and_delete_in_json(demo: Api, cloud: Cloud) -> None:
    r = await create(demo, 1, display_name="vol-001", display_description="Another volume.",
                     metadata={"contents": "junk"}, availability_zone="az2", volume_type="ssd")
    assert r.status == 202, r.raw
    made = r.json["volume"]
    vid = made["id"]
    assert set(made) == CREATED_KEYS and uuid.UUID(vid)
    assert r.headers["Location"] == f"{cloud.api_url}/v2/{demo.project_id}/os-volumes/{vid}"
    assert ISO_Z.match(made["created_at"])
    assert {k: v for k, v in made.items() if k not in ("id", "created_at")} == {
        "display_name": "vol-001", "display_description": "Another volume.",
        "status": "creating", "size": 1, "volume_type": "ssd", "metadata": {"contents": "junk"},
        "availability_zone": "az2", "snapshot_id": None, "attachments": []}

    shown = await wait_volume(demo, vid)          # creating -> available, by the service
    assert set(shown) == VOLUME_KEYS
    assert ISO_MICRO.match(shown["createdAt"]) and shown["createdAt"][:19] == made["created_at"][:19]
    assert shown == {
        "attachments": [{}], "availabilityZone": "az2", "createdAt": shown["createdAt"],
        "displayDescription": "Another volume.", "displayName": "vol-001", "id": vid,
        "metadata": {"contents": "junk"}, "size": 1, "snapshotId": None, "status": "available",
        "volumeType": "ssd"}
    for path in ("/os-volumes", "/os-volumes/detail"):
        listed = (await demo.get(path)).json["volumes"]
        assert [v for v in listed if v["id"] == vid] == [shown]

    r = await demo.delete(f"/os-volumes/{vid}")
    assert r.status == 202 and not r.raw
    await wait_volume_gone(demo, vid)
    r = await demo.get(f"/os-volumes/{vid}")
    assert r.status == 404
    assert r.json == {"itemNotFound": {"code": 404,
                                       "message": f"Volume {vid} could not be found."}}
    assert vid not in {v["id"] for v in (await demo.get("/os-volumes")).json["volumes"]}
    assert (await demo.delete(f"/os-volumes/{vid}")).status == 404
    assert await cloud.fetchval("SELECT deleted_at IS NOT NULL FROM volumes WHERE id = $1::uuid",
                                vid)


CREATE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<volume xmlns="http://docs.openstack.org/volume/api/v1">
    <display_name>vol-xml</display_name>
    <display_description>Another volume.</display_description>
    <size>2</size>
    <availability_zone>az3</availability_zone>
    <metadata><meta key="contents">junk</meta></metadata>
</volume>"""


async def test_create_show_and_list_in_xml(demo: Api) -> None:
    r = await demo.post("/os-volumes", data=CREATE_XML,
                        headers={"Content-Type": "application/xml"}, xml=True)
    assert r.status == 202, r.raw
    root = r.xml
    assert root.tag == f"{{{VOLUME_NS}}}volume"
    vid = root.get("id")
    assert {k: root.get(k) for k in ("display_name", "display_description", "status", "size",
                                     "availability_zone", "volume_type", "snapshot_id")} == {
        "display_name": "vol-xml", "display_description": "Another volume.",
        "status": "creating", "size": "2", "availability_zone": "az3", "volume_type": "None",
        "snapshot_id": "None"}
    assert ISO_Z.match(root.get("created_at"))
    metas = root.findall(f"{{{VOLUME_NS}}}metadata/{{{VOLUME_NS}}}meta")
    assert [(m.get("key"), m.text) for m in metas] == [("contents", "junk")]

    await wait_volume(demo, vid)
    for r in (await demo.get(f"/os-volumes/{vid}.xml"), await demo.get(f"/os-volumes/{vid}",
                                                                         xml=True)):
        assert r.status == 200 and r.headers["Content-Type"].startswith("application/xml")
        assert r.xml.tag == f"{{{NS}}}volume"
        assert dict(r.xml.attrib) == {
            "availabilityZone": "az3", "createdAt": r.xml.get("createdAt"),
            "displayDescription": "Another volume.", "displayName": "vol-xml", "id": vid,
            "size": "2", "snapshotId": "None", "status": "available", "volumeType": "None"}
        assert ISO_MICRO.match(r.xml.get("createdAt"))
        assert [etree.QName(c).localname for c in r.xml] == ["attachments", "metadata"]
        (attachment,) = r.xml.find(f"{{{NS}}}attachments")
        assert attachment.tag == f"{{{NS}}}attachment" and not attachment.attrib
        assert r.xml.find(f"{{{NS}}}metadata/{{{NS}}}meta").get("key") == "contents"
    for path in ("/os-volumes.xml", "/os-volumes/detail.xml"):
        r = await demo.get(path)
        assert r.xml.tag == f"{{{NS}}}volumes"
        assert vid in [v.get("id") for v in r.xml.findall(f"{{{NS}}}volume")]
    r = await demo.get(f"/os-volumes/{uuid.uuid4()}.xml")
    assert r.status == 404 and r.xml.tag == f"{{{NS}}}itemNotFound"
    assert (await demo.delete(f"/os-volumes/{vid}.xml")).status == 202
    await wait_volume_gone(demo, vid)


async def test_zone_and_type_defaults(demo: Api) -> None:
    types = {t["name"]: t["id"] for t in (await demo.get("/os-volume-types")).json["volume_types"]}
    by_id = await available_volume(demo, 1, volume_type=types["standard"])
    assert by_id["volumeType"] == "standard"
    # Without a zone: NIMBUS_API_VOLUME_DEFAULT_ZONE (az1); without a type: untyped,
    # shown "None".
    plain = await available_volume(demo, 1)
    assert (plain["availabilityZone"], plain["volumeType"]) == ("az1", "None")
    await delete_volumes(demo)


async def test_volume_from_an_image_is_bootable(demo: Api, cloud: Cloud) -> None:
    vol = await available_volume(demo, 1, imageRef=str(CIRROS_IMAGE_ID), display_name="boot")
    assert await cloud.fetchval("SELECT bootable AND image_id = $2::uuid FROM volumes "
                                "WHERE id = $1::uuid", vol["id"], str(CIRROS_IMAGE_ID))
    blank = await available_volume(demo, 1)
    assert not await cloud.fetchval("SELECT bootable FROM volumes WHERE id = $1::uuid",
                                    blank["id"])
    await delete_volumes(demo)


def _fault(r, name: str, code: int) -> str:
    assert r.status == code, r.raw
    assert set(r.json) == {name} and r.json[name]["code"] == code
    return r.json[name]["message"]


async def test_refused_creates_change_nothing(cloud: Cloud, alt: Api) -> None:
    api, _ = await new_project(cloud, maxTotalVolumeGigabytes=20)
    theirs = await available_volume(alt, 1)
    before = await rows(cloud, api.project_id)
    ubuntu = str(UBUNTU_IMAGE_ID)
    cases = [
        ({"size": 0}, 400, "Invalid volume size provided for create request: 0"),
        ({"size": "ten"}, 400, "Invalid volume size"),
        ({"display_name": "no size"}, 400, "a size is needed"),
        ({"size": 1, "display_name": "n" * 256}, 400, "display_name"),
        ({"size": 1, "metadata": {"k": 1}}, 400, "Metadata property value for key 'k'"),
        ({"size": 1, "availability_zone": "az9"}, 400, "Availability zone 'az9' is invalid."),
        ({"size": 1, "imageRef": "not-an-id"}, 400, "Invalid imageRef provided."),
        ({"size": 5, "imageRef": ubuntu}, 400, "cannot be smaller than the image minDisk size 8GB"),
        ({"size": 8, "imageRef": ubuntu, "snapshot_id": str(uuid.uuid4())}, 400, "not both"),
        ({"size": 1, "volume_type": "gold"}, 404, "Volume type gold could not be found."),
        ({"size": 1, "imageRef": str(uuid.uuid4())}, 404, "could not be found."),
        ({"snapshot_id": str(uuid.uuid4())}, 404, "could not be found."),
        ({"size": 21}, 413, "Quota exceeded for gigabytes: Requested 21, but already used 0 of "
                            "20 gigabytes"),
    ]
    for fields, code, message in cases:
        r = await api.post("/os-volumes", json={"volume": fields})
        name = {400: "badRequest", 404: "itemNotFound", 413: "overLimit"}[code]
        assert message in _fault(r, name, code), (fields, r.json)
    for data, code in (("{}", 400), ('{"volume": 5}', 400), ("<volume", 400), ("[1]", 400)):
        r = await api.post("/os-volumes", data=data,
                           headers={"Content-Type": "application/json"})
        assert r.status == code, (data, r.raw)
    r = await api.post("/os-volumes", data="<volume><size>0</size></volume>",
                       headers={"Content-Type": "application/xml"}, xml=True)
    assert r.status == 400 and r.xml.tag == f"{{{NS}}}badRequest"
    assert await rows(cloud, api.project_id) == before == []
    assert await volume(alt, theirs["id"]) == theirs
    await delete_volumes(alt)


async def _concurrent(api: Api, size: int, n: int = 20) -> list:
    return await asyncio.gather(*(create(api, size, display_name=f"race-{i}") for i in range(n)))


async def _live(cloud: Cloud, project_id: str) -> int:
    return await cloud.fetchval("SELECT count(*) FROM volumes WHERE project_id = $1 "
                                "AND deleted_at IS NULL", project_id)


async def test_concurrent_creates_never_pass_max_total_volumes(cloud: Cloud) -> None:
    api, _ = await new_project(cloud, maxTotalVolumes=5)
    rs = await _concurrent(api, 1)
    assert sorted(r.status for r in rs) == [202] * 5 + [413] * 15
    refused = next(r for r in rs if r.status == 413)
    assert refused.headers["Retry-After"] == "0"
    assert refused.json["overLimit"]["message"] == ("Quota exceeded for volumes: Requested 1, "
                                                    "but already used 5 of 5 volumes")
    assert await _live(cloud, api.project_id) == 5
    assert len((await api.get("/os-volumes")).json["volumes"]) == 5
    await delete_volumes(api)
    assert await _live(cloud, api.project_id) == 0
    assert (await create(api, 1)).status == 202        # deleted volumes gave their quota back
    await delete_volumes(api)


async def test_concurrent_creates_never_pass_max_total_volume_gigabytes(cloud: Cloud) -> None:
    api, _ = await new_project(cloud, maxTotalVolumeGigabytes=10)
    rs = await _concurrent(api, 3)
    assert sorted(r.status for r in rs) == [202] * 3 + [413] * 17
    fault = next(r for r in rs if r.status == 413).json["overLimit"]
    assert fault["message"] == ("Quota exceeded for gigabytes: Requested 3, but already used 9 "
                                "of 10 gigabytes")
    assert fault["details"] == "Only 1 GB of volume quota are left."
    assert await cloud.fetchval("SELECT sum(size_gb) FROM volumes WHERE project_id = $1 "
                                "AND deleted_at IS NULL", api.project_id) == 9
    await delete_volumes(api)


async def test_limits_show_volumes_in_json_and_xml(cloud: Cloud) -> None:
    api, name = await new_project(cloud)
    absolute = (await api.get("/limits")).json["limits"]["absolute"]
    assert (absolute["maxTotalVolumes"], absolute["maxTotalVolumeGigabytes"],
            absolute["totalVolumesUsed"], absolute["totalVolumeGigabytesUsed"]) == (10, 1000, 0, 0)
    assert (await create(api, 1)).status == (await create(api, 2)).status == 202
    await manage(cloud, "set-quota", name, "maxTotalVolumes", "3")
    await manage(cloud, "set-quota", name, "maxTotalVolumeGigabytes", "-1")
    absolute = (await api.get("/limits")).json["limits"]["absolute"]
    assert (absolute["maxTotalVolumes"], absolute["maxTotalVolumeGigabytes"],
            absolute["totalVolumesUsed"], absolute["totalVolumeGigabytesUsed"]) == (3, -1, 2, 3)
    r = await api.get("/limits.xml")
    values = {e.get("name"): e.get("value")
              for e in r.xml.find(f"{{{COMMON}}}absolute").iter(f"{{{COMMON}}}limit")}
    assert (values["maxTotalVolumes"], values["maxTotalVolumeGigabytes"],
            values["totalVolumesUsed"], values["totalVolumeGigabytesUsed"]) == ("3", "-1", "2", "3")
    out = (await manage(cloud, "show-limits", name)).stdout
    assert "maxTotalVolumes" in out and "totalVolumeGigabytesUsed" in out
    await delete_volumes(api)


async def test_another_projects_volume_is_not_found(demo: Api, alt: Api) -> None:
    vol = await available_volume(demo, 1, display_name="mine")
    vid = vol["id"]
    for r in (await alt.get(f"/os-volumes/{vid}"), await alt.delete(f"/os-volumes/{vid}"),
              await alt.post("/os-snapshots", json={"snapshot": {"volume_id": vid}})):
        assert _fault(r, "itemNotFound", 404) == f"Volume {vid} could not be found."
    for path in ("/os-volumes", "/os-volumes/detail"):
        assert vid not in {v["id"] for v in (await alt.get(path)).json["volumes"]}
    r = await alt.get(f"/os-volumes?marker={vid}")       # not even as a marker
    assert r.status == 400
    assert await volume(demo, vid) == vol
    await delete_volumes(demo)


async def test_pages_and_ids(cloud: Cloud) -> None:
    api, _ = await new_project(cloud)
    made = [(await create(api, 1, display_name=f"p{i}")).json["volume"]["id"] for i in range(3)]
    r = await api.get("/os-volumes?limit=2")
    first = [v["id"] for v in r.json["volumes"]]
    assert first == made[::-1][:2]                     # newest first
    href = next_href(r, "volumes")
    assert href is not None and f"marker={first[-1]}" in href
    r = await api.cloud.request("GET", href.removeprefix(api.cloud.api_url), token=api.token)
    assert [v["id"] for v in r.json["volumes"]] == made[:1] and "volumes_links" not in r.json
    r = await api.get("/os-volumes/detail?limit=2", xml=True)
    assert [v.get("id") for v in r.xml.findall(f"{{{NS}}}volume")] == first
    assert [link.get("rel") for link in r.xml.findall(f"{{{ATOM}}}link")] == ["next"]
    for query in ("limit=-1", "limit=x", f"marker={uuid.uuid4()}", "marker=nope"):
        assert (await api.get(f"/os-volumes?{query}")).status == 400, query
    for bad in ("nope", "1", str(uuid.uuid4())):
        assert _fault(await api.get(f"/os-volumes/{bad}"), "itemNotFound", 404) == \
            f"Volume {bad} could not be found."
        assert (await api.delete(f"/os-volumes/{bad}")).status == 404
    await eventually(lambda: _all_available(api), timeout=60)
    await delete_volumes(api)


async def _all_available(api: Api) -> bool:
    return all(v["status"] == "available"
               for v in (await api.get("/os-volumes")).json["volumes"])
